"""Built-in converters, generators, strands and sinks, loaded like any third-party plugin."""

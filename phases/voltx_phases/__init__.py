"""Built-in Volt X curriculum phases; each module registers through the voltx entry-point group."""

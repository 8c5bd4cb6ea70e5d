"""Built-in dataset converters (docs/data-contracts.md): one module per dataset family.

Import-light: this entry-point module lists :class:`~voltx.plugin_specs.ConverterSpec` objects only;
each ``factory`` is a ``"voltx_plugins.converters.<module>:<Class>"`` string imported when the
converter is used, so ``voltx data list`` and ``voltx --help`` never import ``datasets``.

To add a converter, write ``plugins/voltx_plugins/converters/<family>.py`` with a
:class:`voltx.data.converter.Converter` subclass, and add one line to ``BUILTIN``::

    ConverterSpec("scan", "SCAN compositional commands -> actions", ("reasoning",),
                  factory="voltx_plugins.converters.scan:ScanConverter", hub_name="scan"),
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.plugin_specs import ConverterSpec

BUILTIN: list[ConverterSpec] = [
    # F1 lexical grounding
    ConverterSpec("framenet", "FrameNet 1.7 NLTK XML (fulltext/, lu/) -> slot_annotated, one record per annotated predicate", ("slot_annotated",),
                  factory="voltx_plugins.converters.language:FrameNetConverter", hub_name=None),
    ConverterSpec("propbank", "PropBank via CoNLL-2012 OntoNotes 5 (Hub rows or their JSONL dump) -> slot_annotated per predicate", ("slot_annotated",),
                  factory="voltx_plugins.converters.language:PropBankConverter", hub_name="conll2012_ontonotesv5"),
    ConverterSpec("propbank_conllu", "CoNLL-U with PropBank columns (Universal Propositions) -> slot_annotated per predicate", ("slot_annotated",),
                  factory="voltx_plugins.converters.language:PropBankConlluConverter", hub_name=None),
    ConverterSpec("stsb", "STS Benchmark sentence pairs (Hub 0-1 or original TSV 0-5) -> paraphrase with score 0-5", ("paraphrase",),
                  factory="voltx_plugins.converters.language:StsbConverter", hub_name="sentence-transformers/stsb"),
    ConverterSpec("paws", "PAWS labeled_final (Hub or TSV) -> paraphrase with label 0/1", ("paraphrase",),
                  factory="voltx_plugins.converters.language:PawsConverter", hub_name="google-research-datasets/paws"),
    # F2 world knowledge
    ConverterSpec("conceptnet5", "ConceptNet 5 assertions CSV / Hub -> triples, both ends filtered by --language", ("triples",),
                  factory="voltx_plugins.converters.knowledge:ConceptNetConverter", hub_name="conceptnet5"),
    ConverterSpec("cn100k", "ConceptNet CN-100K (relation head tail [label]) -> triples, label-0 rows dropped", ("triples",),
                  factory="voltx_plugins.converters.knowledge:Cn100kConverter", hub_name=None),
    ConverterSpec("atomic", "ATOMIC 2020 TSV (head relation tail, or system-eval 'head @@ relation<TAB>tail1| tail2') / legacy Hub allenai/atomic -> triples, 'none' tails skipped", ("triples",),
                  factory="voltx_plugins.converters.knowledge:AtomicConverter", hub_name="allenai/atomic"),
    ConverterSpec("wordnet", "WordNet 3.0 WNDB data files -> hypernym/hyponym/meronym/holonym triples", ("triples",),
                  factory="voltx_plugins.converters.knowledge:WordNetConverter", hub_name=None),
    # F3 compositional reasoning
    ConverterSpec("scan", "SCAN commands -> action sequences (IN:/OUT: text or Hub scan)", ("reasoning",),
                  factory="voltx_plugins.converters.reasoning:ScanConverter", hub_name="scan"),
    ConverterSpec("cogs", "COGS sentence -> logical form (TSV)", ("reasoning",), factory="voltx_plugins.converters.reasoning:CogsConverter"),
    ConverterSpec("clutrr", "CLUTRR kinship story + query -> relation (CSV or Hub)", ("reasoning",),
                  factory="voltx_plugins.converters.clutrr:ClutrrConverter", hub_name="CLUTRR/v1.0"),
    ConverterSpec("babi", "bAbI QA v1.2 story + question -> answer, supporting facts as steps", ("reasoning",),
                  factory="voltx_plugins.converters.reasoning:BabiConverter", hub_name="facebook/babi_qa"),
    # D1 code
    ConverterSpec("codesearchnet", "CodeSearchNet function <-> docstring", ("code_pairs",),
                  factory="voltx_plugins.converters.code:CodeSearchNetConverter", hub_name="code_search_net"),
    ConverterSpec("tiny_codes", "tiny-codes prompt -> first fenced code block", ("code_pairs",),
                  factory="voltx_plugins.converters.code:TinyCodesConverter", hub_name="nampdn-ai/tiny-codes"),
    ConverterSpec("code_alpaca", "CodeAlpaca-20k instruction -> code", ("code_pairs",),
                  factory="voltx_plugins.converters.code:CodeAlpacaConverter", hub_name="sahil2801/CodeAlpaca-20k"),
    ConverterSpec("code_instructions_122k", "code_instructions_122k instruction -> code", ("code_pairs",),
                  factory="voltx_plugins.converters.code:CodeInstructionsConverter", hub_name="TokenBender/code_instructions_122k_alpaca_style"),
    ConverterSpec("humaneval", "HumanEval problems with tests (HumanEval.jsonl.gz or Hub)", ("code_problems",),
                  factory="voltx_plugins.converters.code:HumanEvalConverter", hub_name="openai_humaneval"),
    ConverterSpec("mbpp", "MBPP problems with tests (sanitized JSONL or Hub mbpp)", ("code_problems",),
                  factory="voltx_plugins.converters.code:MbppConverter", hub_name="mbpp"),
    ConverterSpec("taco", "TACO competitive-programming problems with I/O tests", ("code_problems",),
                  factory="voltx_plugins.converters.code:TacoConverter", hub_name="BAAI/TACO"),
    # offline generators (voltx data generate NAME)
    ConverterSpec("scan_simple_gen", "generated SCAN, simple split (random 80/20 of all 20,910 commands)", ("reasoning",),
                  factory="voltx_plugins.converters.reasoning_gen:ScanSimpleGenerator"),
    ConverterSpec("scan_length_gen", "generated SCAN, length split (train <= 22 actions, test longer)", ("reasoning",),
                  factory="voltx_plugins.converters.reasoning_gen:ScanLengthGenerator"),
    ConverterSpec("scan_addprim_jump_gen", "generated SCAN, addprim_jump split as published (train: no jump "
                  "except 'jump' alone, repeated to 10% of the lines: 14,670 lines, 1,467 x jump)", ("reasoning",),
                  factory="voltx_plugins.converters.reasoning_gen:ScanAddprimJumpGenerator"),
    ConverterSpec("scan_addprim_jump_once_gen", "generated SCAN, addprim_jump split with 'jump' once in train (13,204 lines)",
                  ("reasoning",), factory="voltx_plugins.converters.reasoning_gen:ScanAddprimJumpOnceGenerator"),
    ConverterSpec("babi_qa1_gen", "generated bAbI task 1 (single supporting fact)", ("reasoning",), factory="voltx_plugins.converters.reasoning_gen:Babi1Generator"),
    ConverterSpec("babi_qa2_gen", "generated bAbI task 2 (two supporting facts)", ("reasoning",), factory="voltx_plugins.converters.reasoning_gen:Babi2Generator"),
    ConverterSpec("babi_qa3_gen", "generated bAbI task 3 (three supporting facts)", ("reasoning",), factory="voltx_plugins.converters.reasoning_gen:Babi3Generator"),
    ConverterSpec("kinship_gen", "generated CLUTRR-style kinship chains (train k = 2, 3; test k = 2, 3, 4), steps = the compositions", ("reasoning",),
                  factory="voltx_plugins.converters.reasoning_gen:KinshipGenerator"),
    ConverterSpec("stdlib_code_gen", "Python standard-library code <-> docstring pairs", ("code_pairs",),
                  factory="voltx_plugins.converters.code_pairs_gen:StdlibCodeGenerator"),
    ConverterSpec("srl_gen", "generated slot-annotated sentences (38 predicates, synonyms, passives, adjuncts) for F1", ("slot_annotated",),
                  factory="voltx_plugins.converters.slot_annotated_gen:SrlGenerator"),
    ConverterSpec("paraphrase_gen", "generated STS/PAWS-style pairs (score 0-5, label 0/1, hard negatives) for F1", ("paraphrase",),
                  factory="voltx_plugins.converters.paraphrase_gen:ParaphraseGenerator"),
    ConverterSpec("concepts_gen", "generated ConceptNet-style commonsense triples (built-in KB, 10% test hold-out) for F2", ("triples",),
                  factory="voltx_plugins.converters.triples_gen:ConceptsGenerator"),
]


@hookimpl
def register_converters(register) -> None:
    """Register every built-in converter in ``BUILTIN``."""
    for spec in BUILTIN:
        register(spec)

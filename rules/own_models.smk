# Your own models beside the zoo: a sheet row with source local names a state dict file
# (source_key) for the row's architecture and arch_kwargs; it becomes the checkpoint contract
# data/models/{model}.pt like every other source (filterlens.acquire.local). Architecture
# python builds the model with a constructor in your own file (arch_kwargs constructor
# "file.py:callable"), which runs that file (filterlens.models.user_code). Both files are
# inputs: editing one acquires the model again. Relative paths are relative to the working
# directory; rules/common.smk checks at parse time that they exist and lists them (OWN_FILES).
rule acquire_local:
    input:
        unpack(lambda wildcards: OWN_FILES[wildcards.model]),
    output:
        "data/models/{model}.pt",
    log:
        "logs/acquire/{model}.log",
    benchmark:
        "benchmarks/acquire_local/{model}.tsv"
    wildcard_constraints:
        model=one_of(models_where(source="local")),
    conda:
        "../envs/models.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        row=sheet_row,
    script:
        "../workflow_scripts/acquire_local.py"

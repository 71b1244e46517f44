"""serpentir_lab: the workshop beside the library, for experiments and releases; a user who restores
images never imports it.

    bench/           the cost benchmark: parameters, MACs and FLOPs (scans by formula), peak memory, latency
                     (`serpentir bench`)
    compare.py       trained runs scored on the same held-out photos beside their cost (`serpentir compare`)
    compare_report.py  compare.md / compare.csv / quality_vs_flops.png
    ablate/          a study file's variants trained under one protocol and reported (`serpentir ablate`)
    scaling/         whole against tiled restoration at high resolution (`python -m serpentir_lab.scaling`)
    release/         bundling a run as a bundled model with its card, and blind models' validation cards
    corpus.py        a training corpus of the real photos installed on this machine (`serpentir corpus build`)

It uses only the library's public entry points (serpentir.train, serpentir.infer,
serpentir.checkpoint, serpentir.models, ...); the CLI's workshop commands import it when they run.
"""

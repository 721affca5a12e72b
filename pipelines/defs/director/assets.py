"""Director assets: the storyline of every benchmark case (kling.director.batch over the profile's benchmarks)."""

import time

import dagster as dg

from kling.director.batch import CaseInput, direct_cases
from kling.llm import llm_config
from kling.paths import Layout
from pipelines.defs.curation.resources import CurationSettings

STORYLINES_KEY = dg.AssetKey(["director", "storylines"])


@dg.asset(key=STORYLINES_KEY, deps=[dg.AssetKey(["eval", "benchmarks"])], group_name="director", kinds={"json"})
def storylines(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """One storyline (shots on the audio timeline, per-shot negatives, the experts' dialogue) per benchmark case,
    under Layout.storylines_dir(<benchmark>)/<case>.json; a case that cannot be directed is recorded with its reason."""
    from eval.runs import benchmark_names, prepare_benchmark

    profile = curation.load()
    layout = Layout.default()
    llm = llm_config(profile.section("llm"))
    start = time.perf_counter()
    out = {}
    for name in benchmark_names(profile):
        bench = prepare_benchmark(profile, name, layout)
        cases = [CaseInput(c.id, tuple(c.reference), (c.audio,), c.instruction) for c in bench.cases]
        summary = direct_cases(cases, layout.storylines_dir(name), llm)
        context.log.info(f"storylines {name}: {summary['counts']} ({summary['backend']})")
        out[name] = summary
    return dg.MaterializeResult(metadata={
        "benchmarks": dg.MetadataValue.json(out),
        "backend": llm.backend,
        "llm": dg.MetadataValue.json(llm.public()),
        "seconds": round(time.perf_counter() - start, 2),
    })

"""``genba demo``: the whole story on one machine, with the real components and the embedded defaults.

IT provisions a server and the sites and exports the packaged MiniLM classifier to a signed
bundle (precision ``auto``); every site installs it and its agent serves that site's report
stream; operators label a few items per class from the queue; each site trains a head on its own
labels (local only); a real SuperLink and one SuperNode per site run SecAgg+ rounds; the global
bundle reaches every site's candidate slot and goes through shadow and pilot into production
where the gates let it. Accuracies are measured on each site's evaluation split; the report,
plots and ``summary.json`` land in the output folder. Every process stops at the end, on an
error and on Ctrl-C.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genba.demo.report import finish_report, say_summary, write_site_reports
from genba.errors import UsageError
from genba.protocol import MIN_SITES_PER_ROUND

PROFILES = ("site-a", "site-b", "site-c")  # the generator's site profiles, taken in turn


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo-out")
    sites: int = 3
    rounds: int = 3
    #: Reports each site serves before its operators label.
    stream_items: int = 400
    labels_per_class: int = 20
    #: Most reports each site serves after the global bundle arrives, while the gates judge it.
    rollout_items: int = 600
    eval_items: int = 300
    seed: int = 0
    dp_noise: float = 0.0
    gui: bool = False
    #: A demo has minutes of traffic, a plant weeks: its gates accept a candidate shown to be no more
    #: than 10 points behind production (a plant's default margin is 1), so the stages can be seen.
    #: They judge on the audit sample the demo's operators label (a plant's default judges on the
    #: disagreements it draws while a candidate answers: ``gates.evidence = "disagreement"``).
    gates: dict[str, Any] = field(
        default_factory=lambda: {
            "min_items": 120, "min_labels": 6, "evaluate_every_s": 0.5, "max_accuracy_drop_pts": 10.0,
            "evidence": "audit",
        }
    )

    def __post_init__(self) -> None:
        if self.sites < MIN_SITES_PER_ROUND:
            raise UsageError(f"--sites must be at least {MIN_SITES_PER_ROUND} (the privacy floor)")
        if self.rounds < 1 or self.labels_per_class < 1 or self.stream_items < 50 or self.eval_items < 20:
            raise UsageError("--rounds and --labels-per-class must be >= 1, the streams >= 50 reports")

    def site_names(self) -> list[str]:
        return [f"site-{chr(ord('a') + i)}" for i in range(self.sites)]


class Steps:
    """Seconds per step, printed as the demo goes."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        self.say(f"▸ {what}")
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 1)
        self.say(f"  done in {self.seconds[name]:.1f} s")


def run(config: DemoConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole story; returns the summary (also written as ``summary.json``)."""
    from genba.demo.fleet import Fleet

    out = Path(config.out).absolute()
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)  # re-runnable: each run starts from a clean work folder
    work.mkdir(parents=True)
    steps = Steps(say)
    with Fleet(work / "logs") as fleet:
        story = _Story(config, work, steps, fleet)
        story.play()
        with steps.step("report", "the report, its plots and each site's KPI report"):
            summary = story.summary()
            write_site_reports(out, summary, story.site_folders())
        summary["steps_s"] = steps.seconds
        finish_report(out, summary)
        say_summary(summary, out, say)
        if config.gui:
            story.open_gui()
    return summary


class _Story:
    def __init__(self, config: DemoConfig, work: Path, steps: Steps, fleet: Any) -> None:
        self.config, self.work, self.steps, self.fleet = config, work, steps, fleet
        self.names = config.site_names()
        self.sites: dict[str, Any] = {}
        self.results: dict[str, dict[str, Any]] = {name: {} for name in self.names}
        self.bundle: Path | None = None
        self.federated: dict[str, Any] = {}

    def play(self) -> None:
        from genba.demo import acts

        with self.steps.step("provision", f"IT provisions a server and {len(self.names)} sites"):
            self.it = acts.provision(self.work, self.names)
        with self.steps.step("export", "IT exports the packaged MiniLM classifier (precision auto), signed"):
            self.bundle = acts.export_bundle(self.work, self.it, self.config.seed, self.steps.say)
        with self.steps.step("install", "each site installs the bundle; its agent serves on loopback"):
            self.sites = acts.start_sites(
                self.work, self.it, self.names, self.bundle, self.config, self.fleet
            )
        with self.steps.step("stream", "each site's agent serves its own report stream"):
            self.reports = acts.serve_streams(self.sites, self.config)
        with self.steps.step("label", "operators label a few items per class from the queue"):
            acts.label(self.sites, self.reports, self.config, self.results)
        with self.steps.step("local_training", "each site trains a head on its own labels (local only)"):
            acts.train_locally(self.sites, self.results)
        with self.steps.step(
            "federated_training", f"{self.config.rounds} SecAgg+ rounds over a real SuperLink"
        ):
            assert self.bundle is not None
            self.federated = acts.federate(self.it, self.bundle, self.sites, self.config, self.fleet)
        with self.steps.step(
            "rollout", "the global bundle goes through shadow and pilot, judged by the gates"
        ):
            acts.roll_out(self.sites, self.reports, self.federated, self.config, self.results)
        with self.steps.step("evaluate", "accuracy on each site's evaluation split"):
            acts.evaluate(self.sites, self.reports, self.bundle, self.federated, self.results)

    def summary(self) -> dict[str, Any]:
        from genba.demo import acts

        assert self.bundle is not None
        return acts.summarize(self.sites, self.bundle, self.federated, self.results, self.steps.seconds,
                              self.config)  # fmt: skip

    def site_folders(self) -> dict[str, Path]:
        return {name: site.folder.root for name, site in self.sites.items()}

    def open_gui(self) -> None:
        from genba.demo import acts

        acts.open_gui(self.sites[self.names[0]], self.steps.say)

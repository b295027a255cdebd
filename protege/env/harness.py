"""Full-scale grading with swebench's own Docker harness (`swebench.harness.run_evaluation`).

The harness runs every instance in its prebuilt image (`instance["image"]` in swebench 5.x),
pulled from a registry, and writes `logs/run_evaluation/<run_id>/<model>/<instance>/` with
`test_output.txt` and `report.json` under the folder it runs in. This module:

- writes predictions (jsonl) and a dataset file (images optionally renamed to a mirror
  namespace, since 5.x has no namespace argument);
- validates predictions against the instances before anything is pulled;
- builds `run_evaluation.main`'s arguments, checked against its installed signature, and
  runs it (or stops there with `dry_run=True`);
- grades saved harness logs again through `protege.env.grading.report_from_log`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.env.grading import report_from_log
from protege.tasks.schema import Task, save_tasks

LOG_ROOT = Path("logs/run_evaluation")  # swebench's RUN_EVALUATION_LOG_DIR, relative to the run folder


def write_predictions(predictions: Iterable[dict[str, Any]], path: str | Path,
                      model_name: str = "protege") -> Path:
    """SWE-bench predictions as jsonl: instance_id, model_name_or_path, model_patch."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for pred in predictions:
            row = {"instance_id": pred["instance_id"],
                   "model_name_or_path": pred.get("model_name_or_path") or model_name,
                   "model_patch": pred.get("model_patch") or ""}
            fh.write(json.dumps(row) + "\n")
    return path


def validate_predictions(predictions: list[dict[str, Any]], tasks: list[Task]) -> list[str]:
    """Problems that would make the harness fail or grade the wrong thing; [] when none."""
    by_id = {t.instance_id: t for t in tasks}
    problems, seen = [], set()
    for n, pred in enumerate(predictions):
        iid = pred.get("instance_id")
        where = f"prediction {n} (instance {iid!r})"
        if iid not in by_id:
            problems.append(f"{where}: not in the dataset")
            continue
        if iid in seen:
            problems.append(f"{where}: duplicate instance id")
        seen.add(iid)
        patch = pred.get("model_patch")
        if patch is not None and not isinstance(patch, str):
            problems.append(f"{where}: field 'model_patch' must be a string")
        elif patch and "diff --git" not in patch and "--- " not in patch:
            problems.append(f"{where}: field 'model_patch' is not a unified diff")
        if not pred.get("model_name_or_path"):
            problems.append(f"{where}: field 'model_name_or_path' missing")
        task = by_id[iid]
        for name in ("image", "eval_script"):
            if not getattr(task, name):
                problems.append(f"{where}: the instance has no {name!r} (swebench 5.x needs it)")
    return problems


def rename_image(image: str, namespace: str | None) -> str:
    """`swebench/sweb.eval.x86_64.foo:latest` -> `<namespace>/sweb.eval.x86_64.foo:latest`."""
    if not namespace:
        return image
    return f"{namespace.rstrip('/')}/{image.rsplit('/', 1)[-1]}"


def write_dataset(tasks: list[Task], path: str | Path, namespace: str | None = None) -> Path:
    """The instances as a jsonl file the harness loads (`dataset_name=<path>`)."""
    from dataclasses import replace

    return save_tasks([replace(t, image=rename_image(t.image, namespace)) for t in tasks], path)


@dataclass
class HarnessRun:
    """One call of `run_evaluation.main`: its arguments and what it needs from a registry."""

    kwargs: dict[str, Any]
    images: list[str]
    workdir: str  # logs/ and the run report are written here
    problems: list[str] = field(default_factory=list)
    missing_images: list[str] | None = None  # None: no engine was asked

    @property
    def log_dir(self) -> Path:
        return Path(self.workdir) / LOG_ROOT / self.kwargs["run_id"]


def harness_kwargs(dataset_path: str | Path, predictions_path: str | Path, run_id: str,
                   max_workers: int = 4, timeout_s: int = 1800, instance_ids: list[str] | None = None,
                   report_dir: str | Path = ".", open_file_limit: int = 4096) -> dict[str, Any]:
    """Arguments for `swebench.harness.run_evaluation.main`, checked against its signature."""
    from swebench.harness.run_evaluation import main

    kwargs = dict(dataset_name=str(dataset_path), split="test", instance_ids=instance_ids or [],
                  predictions_path=str(predictions_path), max_workers=max_workers,
                  open_file_limit=open_file_limit, run_id=run_id, timeout=timeout_s,
                  rewrite_reports=False, modal=False, report_dir=str(report_dir))
    params = inspect.signature(main).parameters
    required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    if unknown := set(kwargs) - set(params):
        raise TypeError(f"installed swebench's run_evaluation.main takes no {sorted(unknown)}")
    if missing := required - set(kwargs):
        raise TypeError(f"installed swebench's run_evaluation.main also needs {sorted(missing)}")
    return kwargs


@contextlib.contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def evaluate(tasks: list[Task], predictions: list[dict[str, Any]], workdir: str | Path, run_id: str,
             max_workers: int = 4, timeout_s: int = 1800, namespace: str | None = None,
             dry_run: bool = False, client=None) -> HarnessRun:
    """Grade predictions with swebench's harness in `workdir`. With `dry_run`, stop after
    writing the inputs, validating them and (when a client is given) listing absent images."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    wanted = {p["instance_id"] for p in predictions}
    chosen = [t for t in tasks if t.instance_id in wanted]
    problems = validate_predictions(predictions, tasks)
    dataset = write_dataset(chosen, workdir / "dataset.jsonl", namespace)
    preds = write_predictions(predictions, workdir / "predictions.jsonl")
    kwargs = harness_kwargs(dataset, preds, run_id, max_workers, timeout_s,
                            instance_ids=sorted(wanted), report_dir=workdir)
    images = sorted({rename_image(t.image, namespace) for t in chosen})
    run = HarnessRun(kwargs, images, str(workdir), problems)
    if client is not None:
        import docker

        run.missing_images = []
        for image in images:
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                run.missing_images.append(image)
    if dry_run:
        return run
    if problems:
        raise ValueError("predictions do not match the instances:\n" + "\n".join(problems))
    from swebench.harness.run_evaluation import main

    with _cwd(workdir):  # the harness writes logs/ relative to the current folder
        main(**kwargs)
    return run


def grade_saved_logs(tasks: list[Task], log_dir: str | Path,
                     predictions: list[dict[str, Any]] | None = None) -> dict[str, dict[str, dict]]:
    """Grade a finished harness run again from its saved `test_output.txt` files, with
    swebench's report functions: {model: {instance_id: report}}. `log_dir` is
    `<workdir>/logs/run_evaluation/<run_id>`; predictions default to the saved patch.diff."""
    patches = {p["instance_id"]: p.get("model_patch") for p in predictions or []}
    by_id = {t.instance_id: t for t in tasks}
    reports = {}
    for output in sorted(Path(log_dir).glob("*/*/test_output.txt")):
        iid, model = output.parent.name, output.parent.parent.name
        if iid not in by_id:
            continue
        patch_file = output.parent / "patch.diff"
        patch = patches.get(iid, patch_file.read_text() if patch_file.exists() else "")
        text = output.read_text(encoding="utf-8", errors="replace")
        report, _ = report_from_log(by_id[iid], patch, text, output.parent / "protege_regrade.log", model)
        reports.setdefault(model, {})[iid] = report
    return reports

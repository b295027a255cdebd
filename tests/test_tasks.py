import json

import pytest

from protege.core.paths import shared_data_dir
from protege.tasks.schema import Task, TaskError, load_tasks, save_tasks, task_from_record

GOOD = {"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc123", "patch": "diff --git a/x b/x\n",
        "problem_statement": "p", "FAIL_TO_PASS": '["t::a"]', "PASS_TO_PASS": "[]", "version": "1.0"}


def test_record_round_trip(tmp_path):
    task = task_from_record(GOOD)
    assert task.FAIL_TO_PASS == ["t::a"] and task.PASS_TO_PASS == []
    path = save_tasks([task], tmp_path / "t.jsonl")
    assert load_tasks(path)[0] == task


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_loads_each_format(tmp_path, suffix):
    path = tmp_path / f"tasks{suffix}"
    rows = [GOOD, {**GOOD, "instance_id": "o__r-2"}]
    if suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
    assert [t.instance_id for t in load_tasks(path)] == ["o__r-1", "o__r-2"]


@pytest.mark.parametrize("change, field", [
    ({"FAIL_TO_PASS": "[not json"}, "FAIL_TO_PASS"),
    ({"PASS_TO_PASS": "[1, 2]"}, "PASS_TO_PASS"),
    ({"repo": "norepo"}, "repo"),
    ({"log_parser": "parse_log_nothing"}, "log_parser"),
    ({"eval_type": "sometimes"}, "eval_type"),
    ({"patch": "not a diff"}, "patch"),
])
def test_errors_name_file_instance_and_field(tmp_path, change, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "instance_id": "o__r-9", **change}) + "\n")
    with pytest.raises(TaskError) as err:
        load_tasks(path)
    msg = str(err.value)
    assert str(path) in msg and "'o__r-9'" in msg and f"field {field!r}" in msg and "row 1" in msg


def test_missing_column_and_collect_mode(tmp_path):
    path = tmp_path / "bad.jsonl"
    row = {k: v for k, v in GOOD.items() if k != "base_commit"}
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**row, "instance_id": "o__r-2"}) + "\n")
    good, problems = load_tasks(path, errors="collect")
    assert [t.instance_id for t in good] == ["o__r-1"]
    assert len(problems) == 1 and "field 'base_commit': missing" in str(problems[0])


def test_malformed_files(tmp_path):
    bad_json = tmp_path / "x.json"
    bad_json.write_text("{oops")
    with pytest.raises(TaskError, match="x.json: not valid JSON"):
        load_tasks(bad_json)
    bad_line = tmp_path / "x.jsonl"
    bad_line.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(TaskError, match="line 2 is not valid JSON"):
        load_tasks(bad_line)
    with pytest.raises(TaskError, match="unsupported file type"):
        (tmp_path / "x.csv").write_text("a,b")
        load_tasks(tmp_path / "x.csv")
    dup = tmp_path / "dup.jsonl"
    dup.write_text((json.dumps(GOOD) + "\n") * 2)
    with pytest.raises(TaskError, match="duplicate instance id"):
        load_tasks(dup)


def test_task_record_keeps_extras():
    task = task_from_record({**GOOD, "tier": "easy"})
    assert task.extra == {"tier": "easy"} and isinstance(task, Task)
    assert task.to_record()["tier"] == "easy"


@pytest.mark.skipif(shared_data_dir() is None, reason="../shared/data is absent (a user's fresh clone)")
@pytest.mark.parametrize("name, count", [("SWE-bench_Verified_test.parquet", 500), ("SWE-bench_Lite_dev.parquet", 23)])
def test_shared_swebench_files_load(name, count):
    tasks = load_tasks(shared_data_dir() / "swebench" / name)
    assert len(tasks) == count
    assert all(t.FAIL_TO_PASS and t.image and t.eval_script and t.log_parser for t in tasks)


# ---- hostile or broken task files (issue 12): every error names the file, the line or instance, the field

def test_collect_mode_keeps_good_rows_around_a_torn_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes((json.dumps(GOOD) + "\n" + '{"instance_id": "o__r-2", "repo"\n'
                      + json.dumps({**GOOD, "instance_id": "o__r-3"}) + "\n").encode()
                     + b'{"instance_id": "caf\xe9"}\n')
    tasks, problems = load_tasks(path, errors="collect")
    assert [t.instance_id for t in tasks] == ["o__r-1", "o__r-3"]
    assert [str(p) for p in problems] == [f"{path}: line 2 is not valid JSON (Expecting ':' delimiter)",
                                          f"{path}: line 4 is not UTF-8 (byte 20)"]
    with pytest.raises(TaskError, match="line 2 is not valid JSON"):
        load_tasks(path)


def test_non_utf8_and_deeply_nested_json_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[\xff]")
    with pytest.raises(TaskError, match=f"{bad}: not UTF-8"):
        load_tasks(bad)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TaskError, match=f"{deep}: not valid JSON"):
        load_tasks(deep)
    nested = {**GOOD, "FAIL_TO_PASS": "[" * 100_000 + "]" * 100_000}
    with pytest.raises(TaskError, match="field 'FAIL_TO_PASS': not valid JSON"):
        task_from_record(nested, "x.jsonl", 0)


def test_instance_ids_cannot_name_paths(tmp_path):
    with pytest.raises(TaskError, match="field 'instance_id': must not contain '/'"):
        task_from_record({**GOOD, "instance_id": "../../x"}, "t.jsonl", 3)


def test_tasks_validate_checks_every_file(tmp_path):
    from typer.testing import CliRunner

    from protege.app.cli import app

    good, torn, broken = tmp_path / "good.jsonl", tmp_path / "torn.jsonl", tmp_path / "broken.json"
    good.write_text(json.dumps(GOOD) + "\n")
    torn.write_text(json.dumps(GOOD) + "\n{\n")
    broken.write_bytes(b"\xff")
    result = CliRunner().invoke(app, ["tasks", "validate", str(broken), str(torn), str(good)])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{broken}: unreadable" in result.output and "not UTF-8" in result.output
    assert f"{torn}: 1 valid instances, 1 invalid" in result.output and "line 2" in result.output
    assert f"{good}: 1 valid instances, 0 invalid" in result.output

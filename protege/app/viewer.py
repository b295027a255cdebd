"""See an episode: a run folder's trajectories as a self-contained HTML report.

    protege view RUN_DIR [--out FILE] [--serve]

RUN_DIR is any folder holding trajectories: a collection (01), an RL run (04, one folder per
step), an evaluation (05, one agent run per condition x seed), or a whole `runs/<run-id>`.
The report is `FILE` (default `RUN_DIR/report.html`) plus a folder `<FILE stem>_files/` with one
small script per episode, loaded when the episode is opened: the page opens from disk (no
server, no internet), and the index of thousands of episodes stays small.

The pure part (what a student reads) is `episode_rows` / `episode_record`: what the index and
an episode view show, from the saved records only (trajectories, `report.json` next to them,
RL `rollouts.jsonl`). The rest is HTML and a tiny localhost server.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from protege.core.actions import Action
from protege.core.loop_detection import run_lengths
from protege.core.paths import safe_name
from protege.core.text import terminal_safe

LOOP_MARK = 3  # a run of this many identical base commands is marked in the episode view
_SEED_RE = re.compile(r"seed(\d+)")
_RL_STEP_RE = re.compile(r"step-(\d+)")


def find_trajectories(run_dir: Path) -> list[Path]:
    """Every trajectory file under `run_dir` (files in a `trajectories/` folder, any depth)."""
    return sorted(p for p in Path(run_dir).rglob("*.json") if "trajectories" in p.relative_to(run_dir).parts[:-1])


def _group(run_dir: Path, path: Path) -> str:
    """The condition an episode belongs to: its folder path above `trajectories/`, plus the RL step."""
    parts = path.relative_to(run_dir).parts[:-1]
    cut = parts.index("trajectories")
    group = "/".join(parts[:cut]) or "."
    return group + (f" {parts[cut + 1]}" if len(parts) > cut + 1 else "")


def _loop_marks(actions: list[str]) -> list[int]:
    """Per action, the length of the run of identical base commands it belongs to.

    >>> _loop_marks(["pytest", "pytest", "cat a", "grep x", "find ."])
    [2, 2, 1, 2, 2]
    """
    return [n for n in run_lengths(actions) for _ in range(n)]


def _grades(folder: Path, cache: dict[Path, dict]) -> dict:
    if folder not in cache:
        path = folder / "report.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            data = {}
        cache[folder] = data.get("instances", data) if isinstance(data, dict) else {}
    return cache[folder]


def _rollouts(folder: Path, cache: dict[Path, dict]) -> dict:
    """RL rollout records of an RL run folder, by (step, k)."""
    if folder not in cache:
        rows = {}
        path = folder / "rollouts.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    rows[(int(row["step"]), int(row["k"]))] = row
                except (ValueError, KeyError, TypeError):
                    continue
        cache[folder] = rows
    return cache[folder]


def episode_record(run_dir: Path, path: Path, caches: dict[str, dict] | None = None) -> dict[str, Any]:
    """One episode as the report shows it: the index row (`row`) and the view (`view`)."""
    caches = caches if caches is not None else {"grades": {}, "rollouts": {}}
    traj = json.loads(path.read_text(encoding="utf-8"))
    iid = traj.get("instance_id", path.stem)
    above = path.parent.parent if path.parent.name != "trajectories" else path.parent
    run_folder = path.parent.parent if path.parent.name == "trajectories" else path.parent.parent.parent
    grade = _grades(run_folder, caches["grades"]).get(iid)
    rl = None
    step_match = _RL_STEP_RE.fullmatch(path.parent.name)
    if step_match and above.name == "trajectories":
        rl = _rollouts(above.parent, caches["rollouts"]).get((int(step_match.group(1)), int(path.stem.split("-", 1)[0])))
        grade = grade or ({"resolved": rl.get("resolved"), "status": rl.get("grade_status")} if rl else None)
    steps = traj.get("steps", [])
    actions = [Action(s["action"]["name"], s["action"]["arguments"]).summary() if s.get("action") else ""
               for s in steps]
    acted = [i for i, a in enumerate(actions) if a]
    runs = dict(zip(acted, _loop_marks([actions[i] for i in acted])))
    calls = {c.get("step"): c for c in traj.get("expert_calls", [])}
    tokens = traj.get("tokens", {})
    counts = traj.get("counts", {})
    group = _group(run_dir, path)
    seed = _SEED_RE.search(group)
    row = {"group": group, "seed": int(seed.group(1)) if seed else None, "instance_id": iid,
           "exit_status": traj.get("exit_status"), "resolved": None if grade is None else bool(grade.get("resolved")),
           "steps": counts.get("steps", len(steps)), "expert_calls": counts.get("expert_calls", 0),
           "oracle": any(c.get("oracle") for c in traj.get("expert_calls", [])) or "oracle" in traj.get("model", "").lower()
           or traj.get("model", "").startswith("scripted"),
           "format_errors": counts.get("format_errors", 0),
           "loop_runs": sum(n >= LOOP_MARK for n in run_lengths([actions[i] for i in acted])),
           "protege_tokens": tokens.get("protege_prompt", 0) + tokens.get("protege_completion", 0),
           "expert_tokens": tokens.get("expert_input", 0) + tokens.get("expert_output", 0),
           "cost_usd": traj.get("cost_usd", 0.0), "model": traj.get("model", ""), "expert": traj.get("expert", "")}
    view_steps = []
    for i, s in enumerate(steps):
        call = calls.get(s.get("index", i))
        view_steps.append({"text": _shown(s.get("text")), "action": _shown(actions[i]),
                           "name": (s.get("action") or {}).get("name"),
                           "observation": _shown(s.get("observation")), "error": s.get("error"), "forced": s.get("forced"),
                           "loop": runs.get(i, 0) if runs.get(i, 0) >= LOOP_MARK else 0,
                           "expert": None if call is None else {"oracle": bool(call.get("oracle")),
                                                                "failed": bool(call.get("failed")),
                                                                "question": _shown(call.get("question"))}})
    messages = traj.get("messages", [])
    view = {"instance_id": iid, "group": group, "model": row["model"], "expert": row["expert"],
            "exit_status": row["exit_status"], "error": traj.get("error"),
            "intro": [{"role": m.get("role"), "content": _shown(m.get("content"))} for m in messages[:2]],
            "steps": view_steps, "patch": _shown(traj.get("patch")),
            "grade": None if grade is None else {k: grade.get(k) for k in
                                                 ("resolved", "status", "fail_to_pass", "pass_to_pass", "error",
                                                  "reverted_files")},
            "rl": None if rl is None else {"step": rl.get("step"), "k": rl.get("k"), "terms": rl.get("terms", {})}}
    return {"row": row, "view": view}


def _shown(text: Any) -> str:
    """Stored text as the page shows it: no terminal control (records written before
    observations were cleaned may hold some)."""
    return terminal_safe(text if isinstance(text, str) else "" if text is None else str(text))


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per condition: episodes, resolved share (of graded), mean steps / expert calls, expert
    token share (token-weighted), episodes with a marked loop run."""
    out = []
    for group in sorted({r["group"] for r in rows}):
        rs = [r for r in rows if r["group"] == group]
        graded = [r for r in rs if r["resolved"] is not None]
        total = sum(r["protege_tokens"] + r["expert_tokens"] for r in rs)
        out.append({"group": group, "episodes": len(rs),
                    "resolved": f"{sum(r['resolved'] for r in graded)}/{len(graded)}" if graded else "-",
                    "steps": round(sum(r["steps"] for r in rs) / len(rs), 1),
                    "expert_calls": round(sum(r["expert_calls"] for r in rs) / len(rs), 2),
                    "expert_share": round(sum(r["expert_tokens"] for r in rs) / total, 3) if total else 0.0,
                    "looping": sum(r["loop_runs"] > 0 for r in rs), "oracle": any(r["oracle"] for r in rs)})
    return out


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element (no `</script>`, no U+2028 surprises)."""
    text = json.dumps(data, ensure_ascii=True, default=str)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def write_report(run_dir: str | Path, out: str | Path | None = None, links: dict[str, str] | None = None) -> Path:
    """Write the report for `run_dir`; returns the HTML file. `links`: extra links for the header
    (name -> relative path or URL), e.g. the training curves' TensorBoard folders."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report.html"
    files = out.with_name(out.stem + "_files")
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    caches: dict[str, dict] = {"grades": {}, "rollouts": {}}
    rows, problems = [], []
    for n, path in enumerate(find_trajectories(run_dir)):
        try:
            record = episode_record(run_dir, path, caches)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # one bad file is listed, not fatal
            problems.append(f"{path.relative_to(run_dir)}: {type(exc).__name__}: {exc}")
            continue
        name = f"ep-{n:06d}-{safe_name(record['row']['instance_id'])[:60]}.js"
        (files / name).write_text(f"window.protegeEpisode({_script_json(name)}, {_script_json(record['view'])});\n",
                                  encoding="utf-8")
        rows.append({**record["row"], "file": name})
    links = dict(links or {})
    for tb in sorted({p.parent for p in run_dir.rglob("events.out.tfevents.*")}):
        links.setdefault(f"TensorBoard: {tb.relative_to(run_dir)}", _relative(tb, out.parent))
    index = {"run_dir": str(run_dir), "files": files.name, "rows": rows, "summary": summary_rows(rows),
             "problems": problems, "links": links}
    out.write_text(PAGE.replace("__TITLE__", html.escape(f"protege report: {run_dir}"))
                   .replace("__INDEX__", _script_json(index)), encoding="utf-8")
    return out


def _relative(target: Path, start: Path) -> str:
    return os.path.relpath(target, start)


def link_report(run_dir: Path, record_dir: Path) -> str:
    """Write `run_dir`'s report and, in `record_dir` (papermill_runs/<run>), a `report.html` that
    opens it (a relative redirect: it works where runs/ sits beside papermill_runs/, as after
    the run). Returns the report's path relative to `record_dir`."""
    report = write_report(run_dir)
    target = _relative(report, record_dir)
    record_dir.mkdir(parents=True, exist_ok=True)
    (record_dir / "report.html").write_text(
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url={html.escape(target)}">'
        f'<p>The episode report is <a href="{html.escape(target)}">{html.escape(target)}</a> (in runs/, not committed: '
        f"rebuild it with <code>protege view {html.escape(str(run_dir))}</code>).</p>\n", encoding="utf-8")
    return target


def serve(path: Path, port: int = 8000) -> None:  # pragma: no cover - interactive
    """Serve the report's folder on localhost (Ctrl-C stops)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving http://127.0.0.1:{port}/{path.name}  (Ctrl-C to stop)")
        server.serve_forever()


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#24304a;color:#fff;padding:8px 16px}header a{color:#cfe0ff;margin-right:12px}
main{display:flex;height:calc(100vh - 64px)}#left{width:46%;overflow:auto;border-right:1px solid #ccc;padding:8px}
#right{flex:1;overflow:auto;padding:8px 16px}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #eee;padding:2px 6px;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}tr.ep:hover{background:#eef4ff;cursor:pointer}
tr.sel{background:#dde8ff}.yes{color:#080;font-weight:bold}.no{color:#a00}
.badge{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;font-weight:bold;margin-left:4px}
.oracle{background:#b30000;color:#fff}.loop{background:#e67e00;color:#fff}.fmt{background:#7a00a0;color:#fff}
.msg{border-radius:6px;margin:8px 0;padding:6px 10px;white-space:pre-wrap;word-break:break-word}
.system,.user{background:#f5f5f5}.assistant{background:#eef4ff}.tool{background:#fafafa;border:1px solid #eee}
.guidance{background:#fff4d6;border:2px solid #e0a800}.error{border:2px solid #7a00a0}
pre{margin:0;white-space:pre-wrap}.diff .add{color:#070;background:#eaffea}.diff .del{color:#a00;background:#ffecec}
.diff .hunk{color:#06c}.diff .file{font-weight:bold}details summary{cursor:pointer;color:#555}
</style></head><body>
<header><b>protege report</b> <span id="run"></span> <span id="links"></span></header>
<main><div id="left"><div id="summary"></div>
<p><input id="filter" placeholder="filter (any column)" size="30"> <select id="group"><option value="">all conditions</option></select>
<span id="count"></span></p><table id="index"><thead></thead><tbody></tbody></table><div id="problems"></div></div>
<div id="right"><p>Open an episode from the list.</p></div></main>
<script>const INDEX = __INDEX__;</script>
<script>
"use strict";
const COLS=[["group","condition"],["seed","seed"],["instance_id","instance"],["exit_status","exit"],["resolved","resolved"],
 ["steps","steps"],["expert_calls","expert calls"],["loop_runs","loop runs"],["format_errors","format errors"],
 ["protege_tokens","protégé tokens"],["expert_tokens","expert tokens"],["cost_usd","cost $"]];
const esc=s=>String(s??"").replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
let sortKey="group",sortDir=1;
function cell(r,k){const v=r[k];if(k==="resolved")return v===null?"-":v?'<span class="yes">yes</span>':'<span class="no">no</span>';
 if(k==="cost_usd")return Number(v).toFixed(4);if(k==="group"&&r.oracle)return esc(v)+'<span class="badge oracle">ORACLE</span>';return esc(v);}
function renderIndex(){const f=document.getElementById("filter").value.toLowerCase(),g=document.getElementById("group").value;
 const rows=INDEX.rows.map((r,i)=>[r,i]).filter(([r])=>(!g||r.group===g)&&(!f||COLS.some(([k])=>String(r[k]).toLowerCase().includes(f))));
 rows.sort(([a],[b])=>(a[sortKey]>b[sortKey]?1:a[sortKey]<b[sortKey]?-1:0)*sortDir);
 document.querySelector("#index tbody").innerHTML=rows.map(([r,i])=>`<tr class="ep" data-i="${i}">`+COLS.map(([k])=>`<td>${cell(r,k)}</td>`).join("")+"</tr>").join("");
 document.getElementById("count").textContent=`${rows.length} of ${INDEX.rows.length} episodes`;}
function init(){document.getElementById("run").textContent=INDEX.run_dir;
 document.getElementById("links").innerHTML=Object.entries(INDEX.links).map(([n,u])=>`<a href="${esc(u)}">${esc(n)}</a>`).join("");
 document.querySelector("#index thead").innerHTML="<tr>"+COLS.map(([k,n])=>`<th data-k="${k}">${n}</th>`).join("")+"</tr>";
 document.querySelector("#index thead").onclick=e=>{const k=e.target.dataset.k;if(!k)return;sortDir=sortKey===k?-sortDir:1;sortKey=k;renderIndex();};
 const sel=document.getElementById("group");[...new Set(INDEX.rows.map(r=>r.group))].sort().forEach(g=>sel.add(new Option(g,g)));
 sel.onchange=renderIndex;document.getElementById("filter").oninput=renderIndex;
 document.querySelector("#index tbody").onclick=e=>{const tr=e.target.closest("tr");if(tr)location.hash="ep="+tr.dataset.i;};
 const S=INDEX.summary;document.getElementById("summary").innerHTML="<table><tr><th>condition</th><th>episodes</th><th>resolved</th><th>steps</th><th>expert calls</th><th>expert token share</th><th>episodes with loop runs</th></tr>"+
  S.map(s=>`<tr><td>${esc(s.group)}${s.oracle?'<span class="badge oracle">ORACLE</span>':""}</td><td>${s.episodes}</td><td>${s.resolved}</td><td>${s.steps}</td><td>${s.expert_calls}</td><td>${s.expert_share}</td><td>${s.looping}</td></tr>`).join("")+"</table>";
 document.getElementById("problems").innerHTML=INDEX.problems.map(p=>`<p class="no">${esc(p)}</p>`).join("");
 renderIndex();document.body.dataset.indexMs=performance.now().toFixed(0);window.onhashchange=openFromHash;openFromHash();}
const loaded={};
window.protegeEpisode=(file,data)=>{loaded[file]=data;if(pending===file)showEpisode(data);};
let pending=null;
function openFromHash(){const m=location.hash.match(/ep=(\d+)/);if(!m)return;const r=INDEX.rows[+m[1]];if(!r)return;
 document.querySelectorAll("tr.sel").forEach(t=>t.classList.remove("sel"));const tr=document.querySelector(`tr[data-i="${m[1]}"]`);if(tr)tr.classList.add("sel");
 pending=r.file;if(loaded[r.file]){showEpisode(loaded[r.file]);return;}
 const s=document.createElement("script");s.src=INDEX.files+"/"+r.file;document.body.appendChild(s);}
function folded(text,lines=12){const t=String(text??"");const ls=t.split("\n");if(ls.length<=lines)return `<pre>${esc(t)}</pre>`;
 return `<pre>${esc(ls.slice(0,lines).join("\n"))}</pre><details><summary>${ls.length-lines} more lines</summary><pre>${esc(ls.slice(lines).join("\n"))}</pre></details>`;}
function diff(p){if(!p)return "<p>(empty patch)</p>";return '<pre class="diff">'+p.split("\n").map(l=>{const c=l.startsWith("diff --git")?"file":l.startsWith("@@")?"hunk":
 l.startsWith("+")&&!l.startsWith("+++")?"add":l.startsWith("-")&&!l.startsWith("---")?"del":"";return `<span class="${c}">${esc(l)}</span>`;}).join("\n")+"</pre>";}
function tests(t){if(!t)return "";return ["success","failure"].map(k=>(t[k]||[]).length?`<div>${k}: ${(t[k]||[]).map(esc).join(", ")}</div>`:"").join("");}
function showEpisode(v){let h=`<h2>${esc(v.instance_id)}</h2><p>${esc(v.group)} · model ${esc(v.model)} · expert ${esc(v.expert)} · exit <b>${esc(v.exit_status)}</b>${v.error?" · "+esc(v.error):""}</p>`;
 v.intro.forEach(m=>h+=`<div class="msg ${esc(m.role)}"><b>${esc(m.role)}</b>\n${m.role==="system"?`<details><summary>system prompt</summary>${folded(m.content,400)}</details>`:folded(m.content,30)}</div>`);
 v.steps.forEach((s,i)=>{const badges=(s.loop?`<span class="badge loop">loop run ×${s.loop}</span>`:"")+(s.error==="format"?'<span class="badge fmt">format error</span>':"")+(s.forced?'<span class="badge loop">forced ask</span>':"");
  h+=`<div class="msg assistant${s.error?" error":""}"><b>step ${i+1} · protégé</b>${badges}\n${folded(s.text,20)}</div>`;
  if(s.expert){h+=`<div class="msg guidance expert-call"><b>expert guidance</b>${s.expert.oracle?'<span class="badge oracle">ORACLE</span>':""}${s.expert.failed?" (failed)":""}\n${folded(s.observation,40)}</div>`;}
  else if(s.observation){h+=`<div class="msg tool"><b>${esc(s.name||"observation")}</b>\n${folded(s.observation,8)}</div>`;}});
 h+=`<h3>final patch</h3>${diff(v.patch)}`;
 if(v.grade){const g=v.grade;h+=`<h3>grading: ${g.resolved?'<span class="yes">resolved</span>':'<span class="no">not resolved</span>'} (${esc(g.status)})</h3>`+
  (g.fail_to_pass?`<div><b>FAIL_TO_PASS</b>${tests(g.fail_to_pass)}</div>`:"")+(g.pass_to_pass?`<div><b>PASS_TO_PASS</b>${tests(g.pass_to_pass)}</div>`:"")+
  (g.reverted_files&&g.reverted_files.length?`<div>test infrastructure reverted before grading: ${g.reverted_files.map(esc).join(", ")}</div>`:"")+(g.error?`<div>${esc(g.error)}</div>`:"");}
 if(v.rl){h+=`<h3>RL step ${v.rl.step}, rollout ${v.rl.k}: reward terms</h3><table>`+Object.entries(v.rl.terms).map(([k,x])=>`<tr><td>${esc(k)}</td><td>${esc(x)}</td></tr>`).join("")+"</table>";}
 document.getElementById("right").innerHTML=h;document.getElementById("right").scrollTop=0;}
init();
</script></body></html>
"""

"""The month page's actions. A month whose file was refused for renamed
headers shows the mapping ``accept-headers --dry-run`` prints, and Accept
writes those ``header:`` aliases into the config (comments kept) and then
processes the month as a job. Corrections: Preview → (what would change) → Approve
with a reason → Reload, and the version history with Roll back. Both
actions are jobs (workbench/jobs.py) recorded with actor ``dashboard``.

The preview is a job too (it reads the whole landed file): the button
submits it, the session remembers its id for that month only, and the diff
shows when it is done; approving it submits the reload and drops it, so a
reload is always preceded by a look at what it changes.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from pipeline import corrections
from pipeline.accept_headers import Accepted, accept_headers, mapping_lines
from pipeline.context import Context
from pipeline.errors import WorkbenchError
from workbench import data, jobs, tasks, ui

PREVIEW_KEY = "month_preview"
ACCEPT_KEY = "month_accept"


def corrections_panel(view: ui.View, ctx: Context, dataset: str, period: str) -> None:
    # A running preview changes nothing: it does not hold Roll back or Approve.
    busy = [j for j in jobs.active_jobs(view.url)
            if (j.dataset, j.period) == (dataset, period) and j.kind != "preview"]
    for job in busy:
        st.info(f"{job.label}: {job.status}", icon=":material/hourglass_top:")
    header_section(view, ctx, dataset, period, busy=bool(busy))
    preview_section(view, ctx, dataset, period, busy=bool(busy))
    versions_section(view, ctx, dataset, period, busy=bool(busy))


# --------------------------------------------------------------------------
# Renamed headers → Accept mapping → process the month
# --------------------------------------------------------------------------
def _accept_mapping(view: ui.View, ctx: Context, shown: Accepted) -> None:
    month = (shown.dataset, shown.period)
    try:
        # Accepting means "write what I saw": a file or config changed since is not that.
        if accept_headers(ctx, shown.file_id, dry_run=True).mapping != shown.mapping:
            raise WorkbenchError("The file or the config changed since the mapping was shown; "
                                 "nothing was written. Look again.")
        accept_headers(ctx, shown.file_id)
    except WorkbenchError as exc:
        st.session_state[ACCEPT_KEY] = {"month": month, "text": str(exc)}
        return
    st.session_state.pop(ACCEPT_KEY, None)
    job = tasks.submit_process_month(view.settings, ctx.config.path, shown.dataset, str(shown.period))
    tasks.track(job)


def header_section(view: ui.View, ctx: Context, dataset: str, period: str, *, busy: bool) -> None:
    told = st.session_state.get(ACCEPT_KEY)
    if told and told.get("month") == (dataset, period):
        st.error(told["text"], icon=":material/error:")
    proposal = data.header_mapping(ctx, dataset, period)
    if proposal is None:
        return
    with st.container(border=True, key="header_mapping"):
        st.markdown("#### Renamed headers")
        st.caption(f"`{proposal.file_name}` was refused for its header row. The closest headers "
                   f"(`python -m pipeline accept-headers --file-id {proposal.file_id} --dry-run`):")
        st.code("\n".join(mapping_lines(proposal)), language=None)
        st.button("Accept mapping", key="accept_headers", type="primary", icon=":material/done_all:",
                  disabled=busy, on_click=_accept_mapping, args=(view, ctx, proposal),
                  help=f"Adds these header: aliases to {ctx.config.path.name} (its comments are kept), "
                       "then processes the month as a job")


# --------------------------------------------------------------------------
# Preview → Approve → Reload
# --------------------------------------------------------------------------
def _preview(view: ui.View, dataset: str, period: str) -> None:
    # A callback: submits the preview job once per click; the page shows
    # its diff when it is done (the jobs panel repaints the page then).
    job = tasks.submit_preview(view.settings, view.config, dataset, period)
    tasks.track(job)
    if job is not None:
        st.session_state[PREVIEW_KEY] = {"month": (dataset, period), "job": job.id}


def shown_preview(dataset: str, period: str) -> dict[str, Any] | None:
    """This tab's preview of the month: {"running": True} while its job is
    queued or running, then the job's payload (ok, the diff, sha256 or text)."""
    shown = st.session_state.get(PREVIEW_KEY)
    if not shown or shown.get("month") != (dataset, period):
        return None
    if "job" not in shown:
        return shown
    job = jobs.get(shown["job"])
    if job is None:  # forgotten by the server (restarted): nothing to show
        return None
    if job.active:
        return {"running": True, "status": job.status}
    payload = (job.result.payload if job.result else None) or {
        "ok": False, "text": job.result.message if job.result else "the preview did not finish"}
    return {"month": (dataset, period), **payload}


def _approve(view: ui.View, ctx: Context, dataset: str, period: str) -> None:
    reason = (st.session_state.get("approve_reason") or "").strip()
    if not reason:
        return
    shown = shown_preview(dataset, period) or {}
    if shown.get("sha256") != tasks.landed_sha(ctx, dataset, period):
        # Approving means "load what I saw": a file replaced since is not that.
        st.session_state[PREVIEW_KEY] = {"month": (dataset, period), "ok": False,
                                         "text": "The landed file changed since the preview; nothing was "
                                                 "reloaded. Preview again."}
        return
    job = tasks.submit_reload(view.settings, view.config, dataset, period, reason)
    tasks.track(job)
    st.session_state.pop(PREVIEW_KEY, None)
    st.session_state.approve_reason = ""


def preview_section(view: ui.View, ctx: Context, dataset: str, period: str, *, busy: bool) -> None:
    st.markdown("#### Reload from `landed/`")
    st.caption("Preview compares the landed file with the rows the month serves, by primary key; "
               "nothing is written until you approve.")
    st.button("Preview", key="preview", icon=":material/difference:", on_click=_preview,
              args=(view, dataset, period), help="Runs as a job; the difference shows here when it is done")
    shown = shown_preview(dataset, period)
    if not shown:
        return
    if shown.get("running"):
        st.info(f"Preview {shown['status']}: reading the landed file…", icon=":material/hourglass_top:")
        return
    if not shown["ok"]:
        st.error(shown["text"], icon=":material/error:")
        return
    show_diff(shown, view.config.dataset(dataset).primary_key)
    st.text_input("Reason", key="approve_reason", placeholder="why this reload (required)",
                  help="Recorded in meta.corrections with actor 'dashboard'")
    reason = (st.session_state.get("approve_reason") or "").strip()
    st.button("Approve and reload", key="approve", type="primary", icon=":material/check:",
              disabled=not reason or busy, on_click=_approve, args=(view, ctx, dataset, period),
              help="Give a reason first" if not reason else None)


def show_diff(diff: dict[str, Any], key: tuple[str, ...]) -> None:
    st.caption(f"File `{diff['file_name']}`")
    cols = st.columns(5)
    for col, (label, name) in zip(cols, [("Rows now", "rows_before"), ("Rows after", "rows_after"),
                                         ("Added", "added"), ("Removed", "removed"), ("Changed", "changed")]):
        value = diff.get(name)
        col.metric(label, "—" if value is None else f"{int(value):,}")
    changed = diff.get("columns_changed") or {}
    if changed:
        st.markdown("Columns changed: " + ", ".join(f"`{c}` ({n:,})" for c, n in changed.items()))
    sample = data.sample_frame(diff.get("sample") or [], key)
    if not sample.empty:
        st.container(key="preview_sample").dataframe(sample, hide_index=True, width="stretch")
    if diff.get("downstream"):
        st.caption("Rebuilds " + ", ".join(diff["downstream"]))


# --------------------------------------------------------------------------
# Versions and Roll back
# --------------------------------------------------------------------------
def _rollback(view: ui.View, dataset: str, period: str) -> None:
    to = st.session_state.get("rollback_to")
    reason = (st.session_state.get("rollback_reason") or "").strip() or "rolled back from the dashboard"
    job = tasks.submit_rollback(view.settings, view.config, dataset, period, to, reason)
    tasks.track(job)


def versions_section(view: ui.View, ctx: Context, dataset: str, period: str, *, busy: bool) -> None:
    st.markdown("#### Versions")
    versions = corrections.history(ctx, dataset, period)
    if not versions:
        st.caption("Nothing loaded yet.")
        return
    frame = data.versions_frame(versions)
    st.container(key="month_versions").dataframe(frame, hide_index=True, width="stretch", column_config={
        "load_id": st.column_config.NumberColumn("Load #", width="small"),
        "served": st.column_config.CheckboxColumn("Served"), "file": "File",
        "rows": st.column_config.NumberColumn("Rows", format="localized"),
        "loaded_at": st.column_config.DatetimeColumn("Loaded (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "kept": st.column_config.CheckboxColumn("Kept", help="its rows are kept: it can be served again")})
    targets = [v.load_id for v in versions if v.kept and not v.served]
    if not targets:
        st.caption("No earlier version is kept: nothing to roll back to.")
        return
    st.selectbox("Roll back to load", targets, key="rollback_to")
    st.text_input("Reason", key="rollback_reason", placeholder="rolled back from the dashboard")
    st.button("Roll back", key="rollback", icon=":material/undo:", disabled=busy,
              on_click=_rollback, args=(view, dataset, period))

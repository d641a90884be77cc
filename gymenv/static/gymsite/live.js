/* gymsite live page: polls /dashboard/feed.json and updates instances, runs, the chart and the frame in
   place. One request at a time, the next one a second after the last answer (so never more than one
   a second per tab), none while the tab is hidden. Rows are updated cell by cell, never rebuilt:
   what the viewer has open, selected or is about to click stays where it is. */
"use strict";

(() => {
  const POLL_MS = 1000;
  const root = document.getElementById("live");
  if (!root) return;
  let focus = root.dataset.focus || "";
  let timer = null;
  let inFlight = false;
  let lastSeries = "";

  const $ = (sel, from) => (from || document).querySelector(sel);
  const text = (v, digits) => (v === null || v === undefined ? "-" : (digits === undefined ? String(v) : Number(v).toFixed(digits)));
  const percent = (v) => (v === null || v === undefined ? "-" : `${Math.round(v * 100)}%`);
  const short = (id) => String(id).slice(0, 8);

  function node(tag, attrs, children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") n.textContent = v; else n.setAttribute(k, v);
    }
    for (const c of children || []) n.appendChild(c);
    return n;
  }

  function controlsCell(id) {
    // Same markup as the server's (templates/gymenv/_controls.html): forms that work without scripts.
    const tpl = document.getElementById("controls-template");
    const cell = tpl.content.firstElementChild.cloneNode(true);
    // getAttribute, not .action: a node cloned from a <template> resolves no URL until it is in the page.
    cell.querySelectorAll("form").forEach((f) => {
      f.setAttribute("action", f.getAttribute("action").replace("__ID__", encodeURIComponent(id)));
      if (f.dataset.confirm) f.dataset.confirm = f.dataset.confirm.replace("__ID__", id);
    });
    if (id === "default") cell.querySelectorAll("form.delete").forEach((f) => f.remove());
    return cell;
  }

  function updateRow(row, inst) {
    const run = inst.run;
    const cells = row.children;
    cells[2].replaceChildren(run ? node("span", { class: `state state-${run.state}`, text: run.state })
      : node("span", { class: "muted", text: "not recorded" }));
    if (run) {
      const bar = node("span", { class: "bar" }, [node("span", { style: `width: ${run.progress.percentage}%` })]);
      cells[3].replaceChildren(bar, document.createTextNode(` ${run.progress.episodes}`));
      cells[4].textContent = `${run.current_episode} / ${run.current_step}`;
      cells[5].textContent = text(run.average_reward, 2);
      cells[6].textContent = percent(run.success_rate);
      cells[7].replaceChildren(node("a", { href: `/dashboard/runs/${run.run_id}/`, text: short(run.run_id) }));
    } else {
      for (const i of [3, 4, 5, 6, 7]) cells[i].textContent = "-";
    }
    cells[8].textContent = inst.needs_reset ? "needs a reset" : inst.episode_over ? "episode over" : `idle ${Math.round(inst.idle_seconds)} s`;
    row.classList.toggle("selected", inst.instance_id === focus);
  }

  function newRow(inst) {
    const row = node("tr", { "data-instance": inst.instance_id, class: "clickable" }, [
      node("td", {}, [node("code", { text: inst.instance_id })]), node("td", { text: inst.env_id }),
      node("td"), node("td"), node("td", { class: "num" }), node("td", { class: "num" }), node("td", { class: "num" }),
      node("td"), node("td", { class: "muted" }),
    ]);
    row.appendChild(controlsCell(inst.instance_id));
    return row;
  }

  function renderInstances(instances) {
    const seen = new Set();
    for (const inst of instances) {
      seen.add(inst.instance_id);
      let row = root.querySelector(`tr[data-instance="${CSS.escape(inst.instance_id)}"]`);
      if (!row) row = newRow(inst);
      const body = $(`tbody[data-group="${inst.group}"]`, root);
      if (row.parentElement !== body) body.appendChild(row);
      updateRow(row, inst);
    }
    root.querySelectorAll("tr[data-instance]").forEach((row) => { if (!seen.has(row.dataset.instance)) row.remove(); });
    root.querySelectorAll("section[data-group]").forEach((section) => {
      const n = section.querySelectorAll("tr[data-instance]").length;
      section.hidden = n === 0 && section.dataset.group !== "active";
      $(".count", section).textContent = String(n);
    });
  }

  function renderRuns(runs) {
    const body = $("#recent-runs tbody");
    if (!body) return;
    const key = JSON.stringify(runs);
    if (body.dataset.key === key) return;
    body.dataset.key = key;
    body.replaceChildren(...runs.map((r) => node("tr", {}, [
      node("td", {}, [node("a", { href: `/dashboard/runs/${r.run_id}/`, text: short(r.run_id) })]),
      node("td", { text: r.env_id }), node("td", {}, [node("code", { text: r.instance_id })]),
      node("td", {}, [node("span", { class: `state state-${r.state}`, text: r.state })]),
      node("td", { class: "num", text: `${r.completed_episodes}/${r.num_episodes}` }),
      node("td", { class: "num", text: String(r.total_steps) }),
      node("td", { text: r.created_at ? r.created_at.replace("T", " ").slice(0, 19) : "-" }),
    ])));
  }

  function renderFocus(f) {
    const panel = $("#focus");
    if (!panel || !f) return;
    $("#focus-id", panel).textContent = f.instance_id;
    const frame = $("#focus-frame", panel);
    if (f.frame) { frame.src = f.frame; frame.hidden = false; } else { frame.hidden = true; }
    $("#focus-noframe", panel).hidden = !!f.frame;
    const runLink = $("#focus-run", panel);
    if (f.run_id) { runLink.href = `/dashboard/runs/${f.run_id}/`; runLink.textContent = `run ${short(f.run_id)}`; }
    const key = JSON.stringify([f.instance_id, f.series, f.threshold]);
    if (key !== lastSeries) {  // redraw only when an episode ended
      lastSeries = key;
      GymChart.episodes($("#reward-chart"), $("#length-chart"), [{ name: "", series: f.series }], f.threshold);
    }
  }

  async function poll() {
    timer = null;
    if (document.hidden || inFlight) return;
    inFlight = true;
    try {
      const answer = await fetch(`/dashboard/feed.json?focus=${encodeURIComponent(focus)}`,
        { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (answer.ok) {
        const data = await answer.json();
        renderInstances(data.instances);
        renderRuns(data.recent_runs);
        renderFocus(data.focus);
        root.dataset.updated = String(Date.now());  // browser tests wait on this
      }
    } catch (err) {
      // The server restarting or the network dropping: try again on the next tick.
    } finally {
      inFlight = false;
      schedule();
    }
  }

  function schedule(now) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(poll, now ? 0 : POLL_MS);
  }

  function flash(message) {
    const box = $("#flash");
    box.textContent = message;
    box.style.display = "block";
    setTimeout(() => { box.style.display = "none"; }, 6000);
  }

  // Controls: the forms post with the page's CSRF token; scripts ask for the JSON answer instead of
  // the redirect, show a refusal, and refresh the page's state at once.
  root.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form.control")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const answer = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value } });
    if (!answer.ok) {
      const body = await answer.json().catch(() => ({ error: `HTTP ${answer.status}` }));
      flash(body.error || `HTTP ${answer.status}`);
    } else if (form.classList.contains("open")) {
      const made = await answer.json();
      focus = made.instance_id;
    }
    schedule(true);
  });

  root.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-instance]");
    if (!row || event.target.closest("a, button, form")) return;
    focus = row.dataset.instance;
    lastSeries = "";
    root.querySelectorAll("tr[data-instance]").forEach((r) => r.classList.toggle("selected", r === row));
    history.replaceState(null, "", `/?focus=${encodeURIComponent(focus)}`);
    schedule(true);
  });

  document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule(true); });
  schedule(true);
})();

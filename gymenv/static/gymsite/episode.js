/* gymsite episode page: the replay player (all frames come in one answer, then play locally) and the
   step inspector (a step's action, reward, flags, info and observation, with its frame). */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const FPS = 25;  // as the GIF download (runs/frames.py)
  let frames = [];
  let index = 0;
  let playing = null;

  function show(i) {
    if (!frames.length) return;
    index = Math.max(0, Math.min(frames.length - 1, i));
    $("replay-frame").src = `data:image/png;base64,${frames[index]}`;
    $("replay-scrubber").value = String(index);
    $("replay-position").textContent = `${index} / ${frames.length - 1}`;
  }

  function pause() {
    if (playing) clearInterval(playing);
    playing = null;
    $("replay-play").textContent = "Play";
  }

  function play() {
    if (index >= frames.length - 1) show(0);
    $("replay-play").textContent = "Pause";
    playing = setInterval(() => {
      if (index >= frames.length - 1) { pause(); return; }
      show(index + 1);
    }, 1000 / FPS);
  }

  const player = $("player");
  if (player) {
    fetch(player.dataset.src, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((answer) => answer.json().then((body) => ({ ok: answer.ok, body })))
      .then(({ ok, body }) => {
        if (!ok) { $("replay-status").textContent = `No replay: ${body.error}`; return; }
        frames = body.frames;
        $("replay-status").hidden = true;
        $("replay-frame").hidden = false;
        const scrubber = $("replay-scrubber");
        scrubber.max = String(frames.length - 1);
        scrubber.disabled = false;
        $("replay-play").disabled = false;
        player.dataset.frames = String(frames.length);  // browser tests wait on this
        show(0);
      })
      .catch((err) => { $("replay-status").textContent = `No replay: ${err}`; });
    $("replay-play").addEventListener("click", () => (playing ? pause() : play()));
    $("replay-scrubber").addEventListener("input", (event) => { pause(); show(Number(event.target.value)); inspectNum(index); });
  }

  // Frame i is the state after step i (frame 0: after the reset).
  function inspect(row) {
    document.querySelectorAll("#steps tr.selected").forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
    const step = JSON.parse(row.querySelector("script").textContent);
    const obs = step.observation;
    const image = obs && typeof obs === "object" && obs.encoding === "png";
    const shown = { ...step, observation: image ? `<png image ${obs.shape.join("x")}, shown below>` : obs };
    $("inspect-num").textContent = String(step.step_num);
    $("inspect-hint").hidden = true;
    $("inspect-detail").hidden = false;
    $("inspect-detail").textContent = JSON.stringify(shown, null, 1);
    $("inspect-obs").hidden = !image;
    if (image) $("inspect-obs").src = `data:image/png;base64,${obs.data}`;
    if (frames.length) { pause(); show(step.step_num); }
  }

  function inspectNum(n) {
    const row = document.querySelector(`#steps tr[data-step="${n}"]`);
    if (row) inspect(row);
  }

  document.querySelectorAll("#steps tr[data-step]").forEach((row) => row.addEventListener("click", () => inspect(row)));
});

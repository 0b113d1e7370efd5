// The lab page's ways back to an unfinished run: the offer on load to resume the run a closed page left in
// IndexedDB (or to discard it), "Continue this run" for stopped or imported results that miss groups, and the
// GPU fault notice — the run's WebGPU device was lost, or a GPU step failed — which keeps the finished groups'
// results and continues from them on a new GPU device or on the CPU.
//
// Reload mid-run: after every finished group the worker stores the run's results JSON, preset, scale and patch
// in IndexedDB (checkpoint.js: one entry, the latest unfinished run), and inside a group every 30 s a checkpoint
// of that group in the same entry (the worker writes, not this thread: up to ~32 MB each); it says so with
// `stored`. On load the page offers "Resume the unfinished run (k of n groups done)" or "Discard"; resuming
// continues a checkpointed group at its saved step; the entry is deleted when the run finishes or is discarded.
// GPU faults: the page shows "The GPU device was lost: <reason>" (#gpu-fault), keeps the results of the
// finished groups (exports work) and offers to continue from them; after a lost device the group in progress
// continues from its last stored checkpoint (#gpu-fault[data-group-step]).
//
// Test hooks (read by tests/e2e/faults.test.mjs and lab.test.mjs): #lab[data-checkpoint] (the finished groups
// the stored checkpoint holds, once written), #lab[data-group-checkpoint] ("job:step" of the last stored
// mid-group checkpoint), #gpu-fault[data-lost="1|0", data-group-step] with #continue-gpu and #continue-cpu,
// #resume-offer with #resume-run[data-done, data-planned, data-group-step="job:step"] and #discard-run,
// #continue.
import { clearCheckpoint, loadCheckpoint } from "./checkpoint.js";
import { $, showError } from "./dom.js";

/**
 * The checkpoint of the group in progress that the worker stored (checkpoint.js), if it continues `results`
 * (the same plan and finished groups): {bytes, job, step, steps, done}, or null.
 */
async function storedGroupOf(results) {
  const entry = await loadCheckpoint().catch(() => null);
  if (!entry?.group) return null;
  const stored = JSON.parse(entry.json);
  if (stored.jobs.length !== results.jobs.length || JSON.stringify(stored.config) !== JSON.stringify(results.config)) return null;
  return { bytes: entry.group, job: entry.groupJob, step: entry.groupStep, steps: entry.groupSteps, done: entry.done };
}

/** The lab page's resume offer, Continue button and GPU fault notice (see the top of this file). */
export class RecoveryView {
  /**
   * @param {object} lab what page.js shares: `state` (`checkpoint`: the stored run offered on load; `imported`:
   *   the results "Continue this run" finishes; `fault`: { json, group } to continue after a GPU failure),
   *   `client`, the `run` and `report` views, `startRun(options)`, and `restore({ id, scale, patch })` (the
   *   preset, scale and patch of a stored run, shown and put in the address)
   */
  constructor(lab) {
    this.lab = lab;
    const { state } = lab;
    $("continue").addEventListener("click", () => {
      if (state.imported) lab.startRun({ json: state.imported });
    });
    for (const [button, gpu] of [["continue-gpu", true], ["continue-cpu", false]]) {
      $(button).addEventListener("click", () => {
        const json = state.fault?.json;
        const scale = state.run?.scale;
        const group = state.fault?.group;
        lab.startRun(json ? { json, gpu, scale, group: group?.bytes, storedDone: group?.done } : { gpu });
      });
    }
    $("resume-run").addEventListener("click", () => {
      const entry = state.checkpoint;
      if (!entry || lab.client.busy) return;
      state.checkpoint = null;
      lab.restore(entry);
      lab.startRun({ json: entry.json, scale: entry.scale, group: entry.group, storedDone: entry.done });
    });
    $("discard-run").addEventListener("click", () => {
      state.checkpoint = null;
      $("resume-offer").hidden = true;
      this.dropCheckpoint();
    });
  }

  /** The Continue button in `phase`. */
  renderControls() {
    $("continue").disabled = this.lab.client.busy;
  }

  /** A run starts: no offer or notice of an earlier one stays. */
  hide() {
    const { state } = this.lab;
    state.imported = null;
    $("continue").hidden = true;
    $("gpu-fault").hidden = true;
    $("resume-offer").hidden = true;
    state.fault = null;
  }

  /**
   * A checkpoint the worker stored (it writes them itself, worker.js: a group checkpoint is up to ~32 MB, too
   * much for this thread): after `done` finished groups, or inside group `job` at `step`; or why it could not.
   * @param {import("./client.js").StoredMessage} msg
   */
  onStored(msg) {
    if (msg.error) {
      showError(msg.error, { append: true });
      return;
    }
    if (msg.job === undefined) $("lab").dataset.checkpoint = String(msg.done);
    else $("lab").dataset.groupCheckpoint = `${msg.job}:${msg.step}`;
  }

  /** Deletes the stored checkpoint (the run finished, or the user discarded it); a failure is shown, not hidden. */
  dropCheckpoint() {
    delete $("lab").dataset.checkpoint;
    clearCheckpoint().catch((e) => showError(`the saved unfinished run could not be deleted (IndexedDB: ${e.message})`, { append: true }));
  }

  /** On load: offers to resume the unfinished run stored by an earlier page (or to discard it). */
  async offerResume() {
    const { state } = this.lab;
    let entry;
    try {
      entry = await loadCheckpoint();
    } catch (e) {
      showError(`an unfinished run saved in this browser could not be read (IndexedDB: ${e.message})`, { append: true });
      return;
    }
    if (!entry || !state.presets.has(entry.id)) return;
    state.checkpoint = entry;
    const title = state.presets.get(entry.id).title;
    const when = new Date(entry.savedAt).toLocaleString();
    $("resume-text").textContent = `An unfinished run of ${title} (${entry.scale} scale) was saved in this browser on ` +
      `${when}: ${entry.done} of its ${entry.planned} groups are done. Resuming runs only the missing groups` +
      (entry.group ? `; group ${entry.groupJob + 1} continues at step ${entry.groupStep} of ${entry.groupSteps}.` : ".");
    const button = $("resume-run");
    button.textContent = `Resume the unfinished run (${entry.done} of ${entry.planned} groups done)`;
    Object.assign(button.dataset, { done: String(entry.done), planned: String(entry.planned) });
    if (entry.group) button.dataset.groupStep = `${entry.groupJob}:${entry.groupStep}`;
    else delete button.dataset.groupStep;
    $("resume-offer").hidden = false;
  }

  /**
   * Shows "Continue this run" for results that miss groups, unless they cannot be continued: the interpolation
   * presets need the final parameters of their finished groups, which results files do not hold. Returns why not.
   */
  offerContinue(results, json) {
    const { state } = this.lab;
    const missing = results.jobs.length < results.planned_jobs;
    const blocked = missing && results.config.experiment.kind === "interpolation" && results.jobs.length > 0
      ? "an interpolation preset cannot continue from saved results (they do not hold the minima's parameters): run it again"
      : "";
    state.imported = missing && !blocked ? json : null;
    $("continue").hidden = !state.imported;
    return blocked;
  }

  /**
   * A GPU run that cannot go on (its device was lost, or a GPU step failed): say so plainly, keep the results of
   * the finished groups for export, and offer to continue from them on a new GPU device or on the CPU. After a
   * lost device the group in progress continues from its last checkpoint (read back before the loss, so as
   * trustworthy as the finished groups); after a GPU error it starts again, since the error may predate that
   * checkpoint.
   * @param {import("./client.js").GpuFailedMessage} msg
   */
  async onGpuFailed(msg) {
    const { state, run, report } = this.lab;
    const r = state.run;
    const json = msg.json ?? state.saved?.json ?? null;
    const results = json ? JSON.parse(json) : null;
    const resumable = results && results.config.experiment.kind !== "interpolation";
    const group = msg.lost && resumable ? await storedGroupOf(results) : null;
    run.markEnd();
    if (msg.json) report.keep({ id: r.id, scale: r.scale, json: msg.json, csv: msg.csv });
    report.setParamsJobs([]); // the failed run's Experiment is gone with its device
    const done = results?.jobs.length ?? 0;
    const blocked = results && done > 0 && results.config.experiment.kind === "interpolation";
    state.fault = { json: (done > 0 || group) && !blocked ? json : null, group };
    const sentence = (text) => `${String(text).replace(/[\s.]+$/, "")}.`; // the engine's text may end in ".\n."
    const what = msg.lost ? `The GPU device was lost: ${sentence(msg.lost)}` : `The GPU failed: ${sentence(msg.message)}`;
    $("gpu-fault-text").textContent = what;
    $("gpu-fault").dataset.lost = msg.lost ? "1" : "0";
    const again = !state.fault.json;
    const where = group ? `group ${group.job + 1} continues at step ${group.step} of ${group.steps}, its last checkpoint` : "";
    if (group) $("gpu-fault").dataset.groupStep = `${group.job}:${group.step}`;
    else delete $("gpu-fault").dataset.groupStep;
    $("gpu-fault-help").textContent = done === 0
      ? (group ? `No group had finished, but group ${group.job + 1} was saved at step ${group.step} of ${group.steps}: ` +
          "continue from there on a new GPU device or on the CPU."
        : "No group had finished, so there is nothing to keep: the run can start again on a new GPU device or on the CPU.")
      : `The results of the ${done} finished group${done === 1 ? "" : "s"} (of ${results.planned_jobs}) are kept: save them ` +
        "with the export buttons, or " + (blocked
          ? "run the preset again (an interpolation preset cannot continue from saved results)."
          : `continue the run from them on a new GPU device or on the CPU (the finished groups are not rerun${group ? `; ${where}` : ""}).`);
    $("continue-gpu").textContent = again ? "Run again on a new GPU device" : "Continue on a new GPU device";
    $("continue-cpu").textContent = again ? "Run again on the CPU" : "Continue on the CPU";
    $("gpu-fault").hidden = false;
    run.showFailed(what);
  }
}

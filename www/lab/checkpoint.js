// The lab's checkpoint of an unfinished run, in this browser's IndexedDB, so that a reload (or a closed tab)
// mid-run loses at most the last 30 s of training: after every finished group the lab's worker stores the run's
// results JSON (the engine's own format, which `Experiment.resume` continues without rerunning a finished group)
// with the preset, scale and merge patch it was started with, and every 30 s inside a group a checkpoint of that
// group (bytes from `Experiment.checkpoint`), from which `Experiment.resume` continues it at its step. The worker
// writes (worker.js: the bytes stay off the page's thread); the page reads the entry on load, offers to resume or
// discard it, deletes it, and after a lost GPU device continues the group in progress from it. Used in both.
//
// What is stored: only the user's own last unfinished run and its settings; nothing leaves the machine. How much:
// ONE entry (MAX_ENTRIES), under a fixed key: a new run's checkpoint replaces the previous one, and the entry is
// deleted when the run finishes or the user discards it. The platform's IndexedDB API is used directly (a few
// requests; no wrapper library is needed for one key in one store).

const DB_NAME = "sgd-lab";
const DB_VERSION = 1;
const STORE = "unfinished-runs";
const KEY = "last";
/** How many unfinished runs are kept: one, the latest (a new run's checkpoint replaces it). */
export const MAX_ENTRIES = 1;

let opened = null;

/** The database (opened once; the promise is shared so that requests run in the order they were made). */
function db() {
  opened ??= new Promise((resolve, reject) => {
    if (typeof indexedDB === "undefined") {
      reject(new Error("this browser offers no IndexedDB"));
      return;
    }
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB could not be opened"));
    req.onblocked = () => reject(new Error("IndexedDB is blocked by another tab of this page"));
  });
  opened.catch(() => { opened = null; }); // a later call tries again
  return opened;
}

/** Runs one request in a transaction on the store and resolves with its result once the transaction commits. */
async function request(mode, make) {
  const database = await db();
  return new Promise((resolve, reject) => {
    const tx = database.transaction(STORE, mode);
    const req = make(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error ?? req.error ?? new Error("an IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("an IndexedDB transaction was aborted"));
  });
}

/**
 * Stores the checkpoint of the run in progress, replacing any earlier one.
 * `group` (with groupJob, groupStep, groupSteps) is a mid-group checkpoint (Experiment.checkpoint) taken after
 * the results `json`: resuming continues that group at its step.
 * @param {{id: string, scale: string, patch: object|null, json: string, done: number, planned: number,
 *   group?: Uint8Array, groupJob?: number, groupStep?: number, groupSteps?: number}} entry
 */
export function saveCheckpoint(entry) {
  return request("readwrite", (store) => store.put({ ...entry, savedAt: new Date().toISOString() }, KEY));
}

/** The stored unfinished run, or null when there is none. */
export async function loadCheckpoint() {
  return (await request("readonly", (store) => store.get(KEY))) ?? null;
}

/** Deletes the stored unfinished run (the run finished, or the user discarded it). */
export function clearCheckpoint() {
  return request("readwrite", (store) => store.delete(KEY));
}

// A long-poll loop on a sandbox API whose answers carry a `fingerprint` (todos, notices): the first call answers at
// once, later ones wait (up to 25 s) until the fingerprint changes. Returns a function that stops the loop.

import { getJSON } from "./api.js";

export function follow(path, params, onAnswer) {
  let stopped = false;
  let abort = null;
  let fingerprint = "";
  (async () => {
    let failures = 0;
    while (!stopped) {
      abort = new AbortController();
      try {
        const query = fingerprint ? { ...params, fingerprint, wait: 25 } : params;
        const answer = await getJSON(path, query, abort.signal);
        if (stopped) return;
        failures = 0;
        fingerprint = answer.fingerprint;
        onAnswer(answer);
      } catch (error) {
        if (error.name === "AbortError" || stopped) return;
        failures += 1;
        // Back off so a stopped emulator does not get hammered; any answer resets it.
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * failures, 5000)));
      }
    }
  })();
  return () => {
    stopped = true;
    if (abort) abort.abort();
  };
}

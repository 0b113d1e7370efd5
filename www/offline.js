// Registers the service worker (sw.js) that keeps the app shell and lets the lab, the embed page and the
// examples reload without a network. An external module (not an inline script) so the pages' CSP allows no
// inline scripts. Loaded by index.html, embed.html and examples/*.html; never by the <sgd-lab> element itself,
// which may sit on someone else's page (their origin, their service worker).
// Where service workers are unavailable (http on a non-local host, a sandboxed frame without
// allow-same-origin, a browser with them off) the pages work as before, online only; a note goes to the console.
const SW_URL = new URL("./sw.js", import.meta.url);

function register() {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) {
    console.info("sgd-lab: no service worker here (it needs https or localhost): the page works online only");
    return;
  }
  navigator.serviceWorker.register(SW_URL).catch((e) => {
    console.warn(`sgd-lab: the offline copy could not be set up (${e.message}); the page works online only`);
  });
}

try {
  register();
} catch (e) { // e.g. a SecurityError reading navigator.serviceWorker in an opaque-origin frame
  console.warn(`sgd-lab: no offline copy (${e.message})`);
}

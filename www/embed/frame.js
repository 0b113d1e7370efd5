// embed.html's script: one <sgd-lab> element made from the page's address, for pages that embed a live figure
// in an <iframe> rather than with the custom element (a host whose CSP or CMS allows no third-party scripts).
// ?preset, ?figure, ?scale, ?controls and ?patch become the attributes of the same name; ?cpu (no value) the
// boolean one. The element checks them and shows any error itself. Nothing is stored here but what the lab
// always keeps (the data sets in the Cache API, the app shell for offline use); no cookies are ever set.
import "./sgd-lab.js";

const params = new URLSearchParams(location.search);
const el = document.createElement("sgd-lab");
for (const name of ["preset", "figure", "scale", "controls", "patch"]) {
  if (params.has(name)) el.setAttribute(name, params.get(name));
}
if (params.has("cpu")) el.setAttribute("cpu", "");
document.body.append(el);

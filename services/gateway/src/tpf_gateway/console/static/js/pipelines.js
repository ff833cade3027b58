// Pipeline ids seen in this tab (the API has no list of pipelines), offered as suggestions in
// every pipeline field through one shared <datalist>.

import { h } from "./dom.js";

const KEY = "tpf-console-pipelines";
export const PIPELINE_LIST_ID = "known-pipelines";

export function knownPipelines() {
  try {
    return JSON.parse(window.sessionStorage.getItem(KEY) || "[]");
  } catch {
    return [];
  }
}

export function rememberPipelines(ids) {
  const known = new Set(knownPipelines());
  const before = known.size;
  for (const id of ids) if (id) known.add(id);
  if (known.size !== before) {
    window.sessionStorage.setItem(KEY, JSON.stringify([...known].sort()));
    refreshDatalist();
  }
}

/** The shared datalist, created on first use and kept in step with what was seen. */
export function pipelineDatalist() {
  let list = document.getElementById(PIPELINE_LIST_ID);
  if (!list) {
    list = h("datalist", { id: PIPELINE_LIST_ID });
    document.body.append(list);
  }
  refreshDatalist();
  return list;
}

function refreshDatalist() {
  const list = document.getElementById(PIPELINE_LIST_ID);
  if (list) list.replaceChildren(...knownPipelines().map((id) => h("option", { value: id })));
}

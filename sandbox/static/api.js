// Calls to the sandbox-only JSON API. Errors come back as {"error": "中文说明"}; we
// throw them as Error so callers can show the message as it is.

const BASE = "/sandbox/api";

async function parse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new Error((body && body.error) || `请求失败（HTTP ${response.status}）`);
  }
  return body;
}

export async function getJSON(path, params = {}, signal = undefined) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(`${BASE}${path}${query ? "?" + query : ""}`, { signal, cache: "no-store" });
  return parse(response);
}

export async function postJSON(path, body) {
  const response = await fetch(BASE + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return parse(response);
}

export async function postForm(path, fields, file) {
  const form = new FormData();
  // Plain fields first: the server reads them before the (possibly large) file part.
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  form.append("file", file, file.name);
  return parse(await fetch(BASE + path, { method: "POST", body: form }));
}

export function mediaUrl(ref) {
  return `${BASE}/media?id=${encodeURIComponent(ref)}`;
}

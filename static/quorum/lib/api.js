// The one way Quorum's pages call its API: JSON in and out, the session's CSRF token sent.
// Answers are { status, data } (data null for 204 or a body that is not JSON).

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(method, url, body, headers) {
  const response = await fetch(url, {
    method: method,
    credentials: "same-origin",
    headers: Object.assign({ "Content-Type": "application/json", "X-CSRFToken": csrfToken() }, headers || {}),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch (error) { data = null; }
  }
  return { status: response.status, data: data };
}

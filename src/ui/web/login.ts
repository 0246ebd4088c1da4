/** The login page: shows why the last attempt was refused. */

const MESSAGES: Record<string, string> = {
  wrong: "That token is not right.",
  wait: "Too many wrong tokens: wait a moment before trying again.",
};

const params = new URLSearchParams(location.search);
const error = params.get("error");
const box = document.getElementById("error");
if (box !== null && error !== null) {
  const seconds = params.get("seconds");
  const base = MESSAGES[error] ?? "Login refused.";
  box.textContent = error === "wait" && seconds !== null ? `${base} (${seconds} s)` : base;
  box.hidden = false;
}

document.getElementById("token")?.focus();

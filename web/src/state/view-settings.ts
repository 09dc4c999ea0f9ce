import { signal } from '@preact/signals';

// Display preferences of this browser (not part of a session, so they never travel in an export).
const markdownKey = 'kindling.markdown';

export const renderMarkdown = signal(localStorage.getItem(markdownKey) !== 'false');

export function setRenderMarkdown(on: boolean): void {
  renderMarkdown.value = on;
  localStorage.setItem(markdownKey, String(on));
}

/** Saves text as a file through a temporary object URL (no data: URL size limits, nothing left behind). */
export function downloadFile(name: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function fileStem(name: string): string {
  return name.replace(/[^\w.-]+/g, '_') || 'session';
}

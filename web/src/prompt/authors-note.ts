/** The note text placed into its template; `<|>` marks where the note goes (Lite's convention). */
export function formatAuthorsNote(note: string, template: string): string {
  const trimmed = note.trim();
  if (trimmed.length === 0) return '';
  return template.includes('<|>') ? template.replace('<|>', trimmed) : `${template}${trimmed}`;
}

/**
 * Inserts the formatted note before the last `depth` history blocks. Blocks are turns in chat/instruct mode and
 * lines in story/adventure mode, so depth means "this many turns/lines from the end" in every mode; a depth
 * larger than the history puts the note at its start. The note gets its own line so it never glues to words.
 */
export function insertAuthorsNote(blocks: readonly string[], formattedNote: string, depth: number): string[] {
  if (formattedNote.length === 0) return [...blocks];
  const at = Math.max(0, blocks.length - Math.max(0, Math.floor(depth)));
  const before = blocks.slice(0, at);
  const previous = before.at(-1);
  const lead = previous !== undefined && !previous.endsWith('\n') ? '\n' : '';
  return [...before, `${lead}${formattedNote}\n`, ...blocks.slice(at)];
}

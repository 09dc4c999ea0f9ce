// A small Markdown subset for replies: fenced code (an unclosed fence runs to the end, so a reply still
// streaming in a code block already shows as one), headings, lists, quotes and paragraphs; inline code, bold
// and italic. It yields plain data that the view turns into elements: text is never parsed as HTML.

export type Inline = { kind: 'text' | 'code' | 'strong' | 'em'; text: string };

export type Block =
  | { kind: 'code'; lang: string; text: string }
  | { kind: 'heading'; level: number; inline: Inline[] }
  | { kind: 'list'; ordered: boolean; items: Inline[][] }
  | { kind: 'quote'; inline: Inline[] }
  | { kind: 'paragraph'; inline: Inline[] };

export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  const pattern = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|__([^_\n]+)__|\*([^*\n]+)\*|(?<![\w])_([^_\n]+)_(?![\w])/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) out.push({ kind: 'text', text: text.slice(last, m.index) });
    if (m[1] !== undefined) out.push({ kind: 'code', text: m[1] });
    else if (m[2] !== undefined || m[3] !== undefined) out.push({ kind: 'strong', text: (m[2] ?? m[3])! });
    else out.push({ kind: 'em', text: (m[4] ?? m[5])! });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ kind: 'text', text: text.slice(last) });
  return out;
}

const listItem = /^\s{0,3}(?:([-*+])|(\d+)[.)])\s+(.*)$/;

export function parseMarkdown(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length > 0) blocks.push({ kind: 'paragraph', inline: parseInline(paragraph.join('\n')) });
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^\s{0,3}```\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      flush();
      const body: string[] = [];
      i += 1;
      while (i < lines.length && !/^\s{0,3}```\s*$/.test(lines[i]!)) body.push(lines[i++]!);
      blocks.push({ kind: 'code', lang: fence[1] ?? '', text: body.join('\n') });
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      blocks.push({ kind: 'heading', level: heading[1]!.length, inline: parseInline(heading[2]!) });
      continue;
    }
    const item = listItem.exec(line);
    if (item) {
      flush();
      const ordered = item[2] !== undefined;
      const items: Inline[][] = [parseInline(item[3]!)];
      while (i + 1 < lines.length) {
        const next = listItem.exec(lines[i + 1]!);
        if (next === null || (next[2] !== undefined) !== ordered) break;
        items.push(parseInline(next[3]!));
        i += 1;
      }
      blocks.push({ kind: 'list', ordered, items });
      continue;
    }
    if (/^\s{0,3}>\s?/.test(line)) {
      flush();
      blocks.push({ kind: 'quote', inline: parseInline(line.replace(/^\s{0,3}>\s?/, '')) });
      continue;
    }
    if (line.trim().length === 0) flush();
    else paragraph.push(line);
  }
  flush();
  return blocks;
}

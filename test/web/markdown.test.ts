import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseInline, parseMarkdown } from '../../web/src/components/markdown-blocks.ts';

describe('markdown subset', () => {
  it('parses fences (closed or still open), headings, lists, quotes and paragraphs', () => {
    const blocks = parseMarkdown(
      '# Title\nSome *text* here\nmore\n\n```js\nlet a = 1;\n```\n- one\n- **two**\n1. first\n> quoted\n\n```py\nstill open',
    );
    assert.deepEqual(
      blocks.map((b) => b.kind),
      ['heading', 'paragraph', 'code', 'list', 'list', 'quote', 'code'],
    );
    assert.deepEqual(blocks[2], { kind: 'code', lang: 'js', text: 'let a = 1;' });
    assert.deepEqual(blocks[6], { kind: 'code', lang: 'py', text: 'still open' });
    const list = blocks[3] as { ordered: boolean; items: unknown[] };
    assert.equal(list.ordered, false);
    assert.equal(list.items.length, 2);
    assert.equal((blocks[4] as { ordered: boolean }).ordered, true);
  });

  it('parses inline code, bold and italic, and leaves HTML as text', () => {
    assert.deepEqual(parseInline('a `b` **c** *d* <i>e</i> snake_case_name'), [
      { kind: 'text', text: 'a ' },
      { kind: 'code', text: 'b' },
      { kind: 'text', text: ' ' },
      { kind: 'strong', text: 'c' },
      { kind: 'text', text: ' ' },
      { kind: 'em', text: 'd' },
      { kind: 'text', text: ' <i>e</i> snake_case_name' },
    ]);
  });
});

import { type Inline, parseMarkdown } from './markdown-blocks.ts';

function InlineText(props: { parts: Inline[] }) {
  return (
    <>
      {props.parts.map((p, i) =>
        p.kind === 'code' ? (
          <code key={i}>{p.text}</code>
        ) : p.kind === 'strong' ? (
          <strong key={i}>{p.text}</strong>
        ) : p.kind === 'em' ? (
          <em key={i}>{p.text}</em>
        ) : (
          p.text
        ),
      )}
    </>
  );
}

/** Markdown rendered to elements (text nodes only, never HTML), for committed chat and instruct replies. */
export function MarkdownView(props: { text: string }) {
  return (
    <div class="md">
      {parseMarkdown(props.text).map((b, i) => {
        switch (b.kind) {
          case 'code':
            return (
              <pre key={i} data-lang={b.lang || undefined}>
                <code>{b.text}</code>
              </pre>
            );
          case 'heading':
            return (
              <p key={i} class={`md-h md-h${b.level}`}>
                <InlineText parts={b.inline} />
              </p>
            );
          case 'list': {
            const items = b.items.map((item, j) => (
              <li key={j}>
                <InlineText parts={item} />
              </li>
            ));
            return b.ordered ? <ol key={i}>{items}</ol> : <ul key={i}>{items}</ul>;
          }
          case 'quote':
            return (
              <blockquote key={i}>
                <InlineText parts={b.inline} />
              </blockquote>
            );
          default:
            return (
              <p key={i}>
                <InlineText parts={b.inline} />
              </p>
            );
        }
      })}
    </div>
  );
}

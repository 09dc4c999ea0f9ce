import { useEffect, useRef } from 'preact/hooks';
import { ReasoningSplitter } from '../prompt/reasoning.ts';
import { liveText } from '../state/generation-controller.ts';

/**
 * The reply being streamed, as text nodes that grow by appendData once per frame. Preact never re-renders it
 * while tokens arrive; `onGrow` lets the output keep the newest text in view. With `reasoning`, a leading
 * <think> block streams into a collapsed "Thinking…" section (created only when one starts) and the answer
 * into its own node.
 */
export function LiveReply(props: { onGrow: () => void; reasoning: boolean }) {
  const ref = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    const span = ref.current;
    if (span === null) return;
    const answer = document.createTextNode('');
    const thought = document.createTextNode('');
    let details: HTMLDetailsElement | undefined;
    let splitter = new ReasoningSplitter();
    span.appendChild(answer);
    const showThinking = () => {
      if (details !== undefined) return;
      details = document.createElement('details');
      details.className = 'think';
      const summary = document.createElement('summary');
      summary.textContent = 'Thinking…';
      details.append(summary, thought);
      span.insertBefore(details, answer);
    };
    const write = (delta: string) => {
      if (!props.reasoning) {
        answer.appendData(delta);
        return;
      }
      const part = splitter.push(delta);
      if (part.thinking) showThinking();
      if (part.reasoning) thought.appendData(part.reasoning);
      if (part.answer) answer.appendData(part.answer);
    };
    const sink = {
      append: (delta: string) => {
        write(delta);
        props.onGrow();
      },
      replace: (full: string) => {
        splitter = new ReasoningSplitter();
        answer.data = '';
        thought.data = '';
        write(full);
        props.onGrow();
      },
    };
    liveText.attach(sink);
    return () => {
      liveText.detach(sink);
      span.replaceChildren();
    };
  }, []);
  return <span class="live" ref={ref} data-testid="live-reply" />;
}

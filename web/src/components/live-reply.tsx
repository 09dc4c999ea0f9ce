import { useEffect, useRef } from 'preact/hooks';
import { liveText } from '../state/generation-controller.ts';

/**
 * The reply being streamed, as one text node that grows by appendData once per frame. Preact never re-renders
 * it while tokens arrive; `onGrow` lets the output keep the newest text in view.
 */
export function LiveReply(props: { onGrow: () => void }) {
  const ref = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    const span = ref.current;
    if (span === null) return;
    const node = document.createTextNode('');
    span.appendChild(node);
    const sink = {
      append: (delta: string) => {
        node.appendData(delta);
        props.onGrow();
      },
      replace: (full: string) => {
        node.data = full;
        props.onGrow();
      },
    };
    liveText.attach(sink);
    return () => {
      liveText.detach(sink);
      node.remove();
    };
  }, []);
  return <span class="live" ref={ref} data-testid="live-reply" />;
}

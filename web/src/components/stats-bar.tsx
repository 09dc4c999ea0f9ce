import { generation, stats } from '../state/store.ts';

/** Tokens, speed and prompt budget of the current or last generation; updated at most once per frame. */
export function StatsBar() {
  const st = stats.value;
  const gen = generation.value;
  if (st === undefined) return <div class="stats" data-testid="stats" />;
  const parts: string[] = [];
  if (gen.phase === 'sending') parts.push(gen.status ? `provider ${gen.status}…` : 'waiting for first token…');
  if (gen.phase === 'streaming' && gen.status) parts.push(`provider ${gen.status}…`);
  if (st.promptTokens !== undefined && st.budget !== undefined) {
    parts.push(
      `prompt ${st.promptTokens}${st.exactCount ? '' : '≈'} / ${st.budget} tokens${st.trimmedChars ? ' (older text trimmed)' : ''}`,
    );
  }
  parts.push(`${st.tokens} tokens`);
  if (st.tokensPerSecond !== undefined) parts.push(`${st.tokensPerSecond.toFixed(1)} tok/s`);
  if (st.firstTokenMs !== undefined) parts.push(`first token ${Math.round(st.firstTokenMs)} ms`);
  parts.push(`${(st.elapsedMs / 1000).toFixed(1)} s`);
  if (gen.phase === 'idle' && st.stopReason) parts.push(`ended: ${st.stopReason}`);
  return (
    <div class="stats" data-testid="stats">
      {parts.join(' · ')}
    </div>
  );
}

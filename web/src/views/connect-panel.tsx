import { openAiPresets, type ProviderId, providers } from '../api/providers.ts';
import { NumberField } from '../components/number-field.tsx';
import {
  apiKey,
  connect,
  connectionConfig,
  connectionState,
  resolvedUrl,
  resolvedUrls,
  setApiKey,
  setConnectionConfig,
  storedKey,
} from '../state/connection.ts';

/** Provider, URL, key, model and streaming mode; the status line says what was found or what to fix. */
export function ConnectPanel() {
  const config = connectionConfig.value;
  const state = connectionState.value;
  const def = providers[config.provider];
  const selectProvider = (provider: ProviderId) => {
    setConnectionConfig({ provider, baseUrl: '', model: '', streaming: 'sse' });
    apiKey.value = storedKey();
  };
  return (
    <section class="panel-body">
      <label class="field wide">
        <span>Provider</span>
        <select
          data-testid="provider"
          value={config.provider}
          onChange={(e) => selectProvider(e.currentTarget.value as ProviderId)}
        >
          {Object.values(providers).map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
        </select>
      </label>
      {config.provider === 'openai' ? (
        <label class="field wide">
          <span>Preset</span>
          <select
            value={openAiPresets.find((p) => p.url === config.baseUrl)?.id ?? ''}
            onChange={(e) => {
              const preset = openAiPresets.find((p) => p.id === e.currentTarget.value);
              if (preset) setConnectionConfig({ baseUrl: preset.url, chatApi: preset.chat, model: '' });
              apiKey.value = storedKey();
            }}
          >
            <option value="">Custom URL</option>
            {openAiPresets.map((p) => (
              <option key={p.id} value={p.id}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      <label class="field wide">
        <span>URL</span>
        <input
          data-testid="endpoint-url"
          type="text"
          inputMode="url"
          title="Several URLs, comma-separated, fail over to the next when one cannot be reached"
          disabled={config.provider === 'kindling'}
          placeholder={config.provider === 'kindling' ? resolvedUrl() || 'this page’s origin' : def.defaultUrl}
          value={config.provider === 'kindling' ? resolvedUrl() : config.baseUrl}
          onChange={(e) => {
            setConnectionConfig({ baseUrl: e.currentTarget.value });
            apiKey.value = storedKey();
          }}
        />
      </label>
      <label class="field wide">
        <span>
          API key{' '}
          {def.needsKey
            ? ''
            : config.provider === 'kindling' || config.provider === 'kobold'
              ? '(if the server has a password)'
              : '(optional)'}
        </span>
        <input
          data-testid="api-key"
          ref={(el) => {
            if (el && state.needsKey) el.focus();
          }}
          aria-invalid={state.needsKey ? true : undefined}
          type="password"
          autocomplete="off"
          value={apiKey.value}
          onInput={(e) => setApiKey(e.currentTarget.value)}
        />
      </label>
      <label
        class="check"
        title="Without this the key is forgotten when the tab closes. It is only ever sent to the URL above."
      >
        <input
          type="checkbox"
          checked={config.rememberKey}
          onChange={(e) => {
            setConnectionConfig({ rememberKey: e.currentTarget.checked });
            setApiKey(apiKey.value);
          }}
        />
        Remember key in this browser
      </label>
      {def.api !== 'kobold' ? (
        <label class="field wide">
          <span>Model</span>
          <input
            list="model-list"
            value={config.model}
            placeholder={state.info?.models.length ? 'pick or type a model id' : 'model id'}
            onChange={(e) => setConnectionConfig({ model: e.currentTarget.value })}
          />
          <datalist id="model-list">
            {(state.info?.models ?? []).map((m) => (
              <option key={m} value={m} />
            ))}
          </datalist>
        </label>
      ) : null}
      {config.provider === 'openai' ? (
        <label class="check">
          <input
            type="checkbox"
            checked={config.chatApi}
            onChange={(e) => setConnectionConfig({ chatApi: e.currentTarget.checked })}
          />
          Chat completions (role-tagged messages)
        </label>
      ) : null}
      <label class="check">
        <input
          type="checkbox"
          data-testid="streaming-toggle"
          checked={config.streaming !== 'off'}
          onChange={(e) => setConnectionConfig({ streaming: e.currentTarget.checked ? 'sse' : 'off' })}
        />
        Stream tokens
      </label>
      {def.canPoll ? (
        <label
          class="check"
          title="Polls /api/extra/generate/check instead of an event stream; works through buffering proxies"
        >
          <input
            type="checkbox"
            data-testid="poll-toggle"
            checked={config.streaming === 'poll'}
            onChange={(e) => setConnectionConfig({ streaming: e.currentTarget.checked ? 'poll' : 'sse' })}
          />
          Polling mode
        </label>
      ) : null}
      {def.api === 'kobold' && config.streaming === 'sse' ? (
        <NumberField
          label="Server heartbeat (s)"
          testId="heartbeat-seconds"
          value={config.heartbeatSeconds}
          min={1}
          max={600}
          title="The server's --heartbeat. A stream silent for longer is checked for a proxy that holds it back; then replies update by polling."
          onChange={(heartbeatSeconds) => setConnectionConfig({ heartbeatSeconds })}
        />
      ) : null}
      <button
        type="button"
        class="primary"
        data-testid="connect"
        disabled={state.phase === 'connecting'}
        onClick={() => void connect()}
      >
        {state.phase === 'connecting' ? 'Connecting…' : 'Connect'}
      </button>
      {state.phase === 'connected' && state.info ? (
        <dl class="info">
          <dt>Server</dt>
          <dd>
            {state.info.server} {state.info.version ?? ''}
          </dd>
          <dt>Model</dt>
          <dd>{state.info.model ?? '—'}</dd>
          <dt>Context</dt>
          <dd>{state.info.contextSize ? `${state.info.contextSize} tokens` : 'unknown'}</dd>
          <dt>Tokenizer</dt>
          <dd>{state.info.canCountTokens ? 'server token counts' : 'estimated counts'}</dd>
          {state.info.models.length > 0 ? (
            <>
              <dt>Models</dt>
              <dd>{state.info.models.length}</dd>
            </>
          ) : null}
        </dl>
      ) : null}
      {state.phase === 'error' ? (
        <div class="error" role="alert">
          {state.error}
          {state.suggestOpenAi ? (
            <button
              type="button"
              onClick={() => {
                setConnectionConfig({
                  provider: 'openai',
                  baseUrl: resolvedUrls().join(', '),
                  chatApi: false,
                  model: state.suggestOpenAi?.[0] ?? '',
                });
                void connect();
              }}
            >
              Switch to OpenAI-compatible
            </button>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

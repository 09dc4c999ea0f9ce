import { render } from 'preact';
import { providers } from './api/providers.ts';
import { startAutosave } from './state/autosave.ts';
import { apiKey, connect, connectionConfig } from './state/connection.ts';
import { isGenerating } from './state/store.ts';
import { App } from './views/app.tsx';
import './styles.css';

render(<App />, document.getElementById('app')!);
void startAutosave();

// Served by Kindling (or any Kobold server) the app connects to its own origin at once, like Lite's ?local=1.
const config = connectionConfig.value;
if (config.provider === 'kindling' || !providers[config.provider].needsKey || apiKey.value.length > 0) void connect();

addEventListener('beforeunload', (e) => {
  // Autosave has the text; this only guards against closing the tab in the middle of a reply.
  if (isGenerating.value) e.preventDefault();
});

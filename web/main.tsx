import { render, useState } from 'hono/jsx/dom';
import { session, whenUnauthorized } from './api.ts';
import { DestinationsView } from './destinations.tsx';
import { EnvironmentView } from './environment.tsx';
import { EnvironmentsView } from './environments.tsx';
import { Login } from './login.tsx';
import { OperationView } from './operation.tsx';
import { OperationsView } from './operations.tsx';
import { RestoreView } from './restore.tsx';
import { ScheduleEditorView } from './schedule-editor.tsx';
import { Link, useLocation } from './router.tsx';
import { Title } from './ui.tsx';
import { WebhookDeliveriesView } from './webhook-deliveries.tsx';
import { WebhooksView } from './webhooks.tsx';

/** The view for a path under /app. */
function View({ url }: { url: URL }) {
  const parts = url.pathname
    .replace(/^\/app\/?/, '')
    .split('/')
    .filter(Boolean)
    .map(decodeURIComponent);
  if (parts.length === 0) return <EnvironmentsView />;
  if (parts[0] === 'environments' && parts[1] && parts.length === 2) return <EnvironmentView id={parts[1]} />;
  if (parts[0] === 'environments' && parts[1] && parts[2] === 'restore')
    return <RestoreView envId={parts[1]} snapshotId={url.searchParams.get('snapshot')} />;
  if (parts[0] === 'environments' && parts[1] && parts[2] === 'schedules' && parts[3])
    return <ScheduleEditorView envId={parts[1]} scheduleId={parts[3] === 'new' ? undefined : parts[3]} />;
  if (parts[0] === 'operations' && parts[1]) return <OperationView id={parts[1]} />;
  if (parts[0] === 'operations' && parts.length === 1) return <OperationsView />;
  if (parts[0] === 'destinations' && parts.length === 1) return <DestinationsView />;
  if (parts[0] === 'webhooks' && parts.length === 1) return <WebhooksView />;
  if (parts[0] === 'webhooks' && parts[1]) return <WebhookDeliveriesView id={parts[1]} />;
  return (
    <>
      <Title>Not found</Title>
      <p>
        No such page. <Link href="/app">See the environments.</Link>
      </p>
    </>
  );
}

function App() {
  const url = useLocation();
  const [signedIn, setSignedIn] = useState(session.token() !== null);
  whenUnauthorized(() => {
    session.signOut();
    setSignedIn(false);
  });
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <nav aria-label="Main">
          <Link href="/app" class="brand">
            strackt backups
          </Link>
          {signedIn && (
            <ul>
              <li>
                <Link href="/app">Environments</Link>
              </li>
              <li>
                <Link href="/app/operations">Operations</Link>
              </li>
              <li>
                <Link href="/app/destinations">Destinations</Link>
              </li>
              <li>
                <Link href="/app/webhooks">Webhooks</Link>
              </li>
              <li>
                <button
                  type="button"
                  class="link"
                  onClick={() => {
                    session.signOut();
                    setSignedIn(false);
                  }}
                >
                  Sign out
                </button>
              </li>
            </ul>
          )}
        </nav>
      </header>
      <main id="main">{signedIn ? <View url={url} /> : <Login onSignedIn={() => setSignedIn(true)} />}</main>
    </>
  );
}

render(<App />, document.getElementById('root')!);

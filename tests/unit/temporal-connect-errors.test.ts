import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectFailureCause } from '../../common/temporal-connection.ts';

// As grpc-js 1.x words them for a call that may not wait for the channel (captured against a real
// Temporal server with mTLS and against the plain-text dev server).
const unavailable = (lastError: string) =>
  `14 UNAVAILABLE: No connection established. Last error: ${lastError}. Resolution note: `;

describe('connectFailureCause', () => {
  it('reduces an OpenSSL record to its reason, says it is TLS and what to check', () => {
    const alert =
      '80FC629F627F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:' +
      '../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n (2026-12-04T19:30:41.795Z)';
    assert.equal(
      connectFailureCause(unavailable(alert), true),
      'TLS handshake failed: tlsv13 alert certificate required ' +
        '(the server wants a client certificate: TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH)',
    );
    const plainServer =
      'Error: 801C2397167F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:' +
      '../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n';
    assert.equal(
      connectFailureCause(unavailable(plainServer), true),
      'TLS handshake failed: wrong version number (is the server plain text?)',
    );
  });

  it("names the CA or server name variable for a certificate Node's TLS refused", () => {
    assert.match(
      connectFailureCause(unavailable('Error: unable to verify the first certificate'), true),
      /^TLS handshake failed: unable to verify the first certificate \(TEMPORAL_TLS_SERVER_CA_CERT_PATH must/,
    );
    const altnames =
      "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: " +
      "Host: other.test. is not in the cert's altnames: DNS:temporal.test, IP Address:127.0.0.1";
    assert.match(
      connectFailureCause(unavailable(altnames), true),
      /^TLS handshake failed: Hostname\/IP does not match .*127\.0\.0\.1 \(TEMPORAL_TLS_SERVER_NAME sets/,
    );
  });

  it('leaves other causes as they are, TLS or not', () => {
    const refused = unavailable('Error: connect ECONNREFUSED 127.0.0.1:17999');
    assert.equal(connectFailureCause(refused, true), 'connect ECONNREFUSED 127.0.0.1:17999');
    assert.equal(connectFailureCause(refused, false), 'connect ECONNREFUSED 127.0.0.1:17999');
    assert.equal(
      connectFailureCause('14 UNAVAILABLE: Name resolution failed for target dns:x.invalid:7233', true),
      '14 UNAVAILABLE: Name resolution failed for target dns:x.invalid:7233',
    );
  });

  it('asks about TLS when a plain-text client was hung up on', () => {
    assert.equal(
      connectFailureCause(unavailable('Failed to connect (2026-12-04T19:30:45.589Z)'), false),
      'Failed to connect (does the server expect TLS? see TEMPORAL_TLS)',
    );
  });

  it('drops Node’s own advice from a certificate error, and says what to set when Node refuses an IP as the server name', () => {
    assert.match(
      connectFailureCause(
        unavailable(
          'Error: unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca',
        ),
        true,
      ),
      /^TLS handshake failed: unable to verify the first certificate \(TEMPORAL_TLS_SERVER_CA_CERT_PATH must/,
    );
    const ip =
      "TypeError [ERR_INVALID_ARG_VALUE]: The property 'options.servername' Setting the TLS ServerName to an IP address is not permitted.. Received '127.0.0.1'";
    assert.match(
      connectFailureCause(ip, true),
      /^TLS cannot start: .*TEMPORAL_ADDRESS by name.*TEMPORAL_TLS_SERVER_NAME/,
    );
  });
});

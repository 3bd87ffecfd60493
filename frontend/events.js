// Frontend events sent through the api-gateway (`/api/v1/events/{key}`).

/**
 * @typedef {object} MessageEvent
 * @property {string} message
 * @property {string} timestamp ISO-8601
 * @property {'broadcast'} visibility
 * @property {null} recipient_id
 */

/**
 * The body of a broadcast chat message. It carries no user_id or email: the gateway stamps
 * the identity from the verified token, so a client cannot speak for another user.
 * @param {string} message
 * @param {Date} [now]
 * @returns {MessageEvent}
 */
export function buildMessageEvent(message, now = new Date()) {
  return {
    message,
    timestamp: now.toISOString(),
    visibility: 'broadcast',
    recipient_id: null,
  };
}

/**
 * POST <gateway>/api/v1/events/message. Resolves on any 2xx (the gateway answers 204);
 * otherwise throws "API Error: <response body>".
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {string} message
 * @returns {Promise<void>}
 */
export async function sendMessage(baseUrl, accessToken, message) {
  const response = await fetch(`${String(baseUrl).replace(/\/+$/, '')}/api/v1/events/message`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${accessToken}`,
    },
    body: JSON.stringify(buildMessageEvent(message)),
  });
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    throw new Error(`API Error: ${body || `status ${response.status}`}`);
  }
}

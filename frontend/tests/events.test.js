import { describe, expect, it, vi } from 'vitest';
import { buildMessageEvent, sendMessage } from '../events.js';

describe('buildMessageEvent', () => {
  it('carries the message, the time and the broadcast visibility, never an identity', () => {
    const event = buildMessageEvent('hello', new Date('2026-03-01T10:00:00.000Z'));
    expect(event).toEqual({
      message: 'hello',
      timestamp: '2026-03-01T10:00:00.000Z',
      visibility: 'broadcast',
      recipient_id: null,
    });
    expect(event).not.toHaveProperty('user_id');
    expect(event).not.toHaveProperty('email');
  });
});

describe('sendMessage', () => {
  it('POSTs the event with the bearer token to /api/v1/events/message', async () => {
    const fetchMock = vi.fn().mockResolvedValue(new Response(null, { status: 204 }));
    vi.stubGlobal('fetch', fetchMock);
    await sendMessage('http://127.0.0.1:8080/', 'tok', 'hi there');
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('http://127.0.0.1:8080/api/v1/events/message');
    expect(init.method).toBe('POST');
    expect(init.headers).toEqual({ 'Content-Type': 'application/json', Authorization: 'Bearer tok' });
    const body = JSON.parse(init.body);
    expect(Object.keys(body).sort()).toEqual(['message', 'recipient_id', 'timestamp', 'visibility']);
    expect(body.message).toBe('hi there');
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
  });

  it('throws "API Error: <body>" on a non-2xx answer', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(new Response('{"error":"forbidden"}', { status: 403 })));
    await expect(sendMessage('http://gw', 'tok', 'x')).rejects.toThrow('API Error: {"error":"forbidden"}');
  });

  it('names the status when the error body is empty', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(new Response('', { status: 500 })));
    await expect(sendMessage('http://gw', 'tok', 'x')).rejects.toThrow('API Error: status 500');
  });
});

// Every protocol error code as the sentence a person reads, in one place.
// Shown once, where the person acted: inline in a dialog or form, or as a
// toast when nothing else is on screen. The server's own message (meant for
// developers and logs) is used only for codes this table does not know.

const SENTENCES = {
  bad_request: 'That request was not understood. Reload the page and try again.',
  unauthorized: 'Your session has expired. Please sign in again.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'That no longer exists.',
  invalid_state: 'That cannot be done now: the chat has moved on.',
  not_owner: 'Only the agent who owns this chat can do that.',
  reserved_characters: 'The characters < and > are reserved for template slots.',
  too_long: 'That is too long. Please shorten it.',
  missing_template_params: 'Fill in every slot of the template.',
  agent_unavailable: 'That agent cannot take the chat now. Pick another one.',
  no_offer: 'That chat request is no longer waiting for you.',
  rate_limited: 'Too many actions at once. Wait a moment and try again.',
  unavailable: 'The service is busy. Try again in a moment.',
  internal: 'Something went wrong on our side. Please try again.',
  // Client-side codes (protocol.js).
  offline: 'The server cannot be reached. Check your connection.',
  timeout: 'The server did not answer in time. Please try again.',
  disconnected: 'The connection was lost. Reconnecting…',
};

/** The sentence for an error ({code, message}) a person should read. */
export function describeError(error) {
  if (!error) return SENTENCES.internal;
  return SENTENCES[error.code] || error.message || SENTENCES.internal;
}

/** Why an agent cannot take a chat (`why_not` of GET /agents?conversation_id=). */
export const WHY_NOT = {
  already_in_conversation: 'already in this chat',
  owes_wrap_up: 'owes a wrap-up from this chat',
  not_available: 'not available',
  no_free_slot: 'no free slot',
};

import type { HearthEngine, ModelInfo } from './hearth.js';

/**
 * `<hearth-chat model="…">`: a self-contained chat box. Attributes: model (URL, relative to the
 * page), backend (auto|gpu|cpu), temperature, max-tokens, system (a system prompt),
 * placeholder. Events: 'hearth-loaded' (detail: the model's info), 'hearth-error' (detail:
 * {message}), 'hearth-reply' (detail: {content, finish_reason, usage}).
 */
export class HearthChat extends HTMLElement {
  /** The loaded engine (null until 'hearth-loaded'). */
  readonly engine: HearthEngine | null;
}

export interface HearthChatEventMap {
  'hearth-loaded': CustomEvent<ModelInfo>;
  'hearth-error': CustomEvent<{ message: string }>;
  'hearth-reply': CustomEvent<{ content: string; finish_reason: 'stop' | 'length' | 'abort'; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null }>;
}

declare global {
  interface HTMLElementTagNameMap {
    'hearth-chat': HearthChat;
  }
}

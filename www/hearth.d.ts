// Type declarations for hearth.js, the main-thread API of the hearth browser runtime.

export type Backend = 'auto' | 'gpu' | 'cpu';
export type FinishReason = 'stop' | 'length';

export interface LoadProgress {
  /** Bytes streamed into the engine so far. */
  loaded: number;
  /** File size from Content-Length, or null when the server did not say. */
  total: number | null;
  /** Average bytes per second since the body started streaming. */
  rate: number;
  /** Seconds left at that rate, or null when the total is unknown. */
  eta: number | null;
  /** True when the bytes come from the offline model cache (Cache Storage). */
  fromCache: boolean;
}

/** The `code` every error from this API carries (see the README). */
export type HearthErrorCode =
  | 'invalid_request'
  | 'model_load_failed'
  | 'storage_quota_exceeded'
  | 'context_length_exceeded'
  | 'gpu_lost'
  | 'gpu_error'
  | 'engine_crashed'
  | 'aborted'
  | 'internal_error';

export interface HearthError extends Error {
  code: HearthErrorCode;
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Expected lowercase hex SHA-256 of the file (of each part, in order, for a split model); a
   * mismatch rejects with "sha256 mismatch: …".
   */
  sha256?: string | string[];
  /**
   * "auto" (default): WebGPU on a hardware adapter, else the CPU with `info.notice` saying why
   * (no WebGPU, or a software adapter such as SwiftShader, slower than the CPU path).
   */
  backend?: Backend;
  /**
   * Context length in tokens; 0 or absent picks the default (2048, at most the model's). An
   * integer up to 2^31 − 1 (larger sizes throw a TypeError rather than wrap); on the GPU the
   * KV cache must also fit one storage binding, else the load rejects saying so.
   */
  maxContext?: number;
  /**
   * Off by default (a full context rejects with context_length_exceeded). A number N: when the
   * context is full, the oldest tokens after the first N ("attention sinks") are dropped and
   * generation goes on.
   */
  contextShift?: number;
  /**
   * Tokens per forward call while reading a prompt (on the GPU also the largest batch; its
   * logits buffer must fit the GPU's binding limit). 0 or absent: 128.
   */
  prefillChunk?: number;
  /**
   * CPU threads (the CPU backend; the engine's worker included). They need a cross-origin
   * isolated page (COOP `same-origin` + COEP `require-corp` or `credentialless`, which
   * `sw.js` supplies on hosts that cannot send headers); elsewhere the engine runs on one
   * thread and `info.threads_note` says why. 0 or absent: one per core, at most 8. Fixed by
   * an engine's first load (each engine has its own worker).
   */
  threads?: number;
  /** Aborts the load; the promise rejects with an Error named "AbortError", message "aborted". */
  signal?: AbortSignal;
  /** Non-standard: wasm heap size samples (bytes) taken while loading. */
  onMemory?: (bytes: number) => void;
  /** The Hugging Face Hub's origin for `hf:` and Hub page URLs (a mirror); default https://huggingface.co. */
  hubEndpoint?: string;
  /**
   * true (default): the model comes from the origin's model cache when there, and is stored
   * there after a download; a model that would not fit the storage quota rejects before the
   * download with the sizes. false: neither.
   */
  cache?: boolean;
}

export interface ModelInfo {
  name: string;
  /** general.architecture: "llama", "qwen2", "gemma3", … */
  architecture: string;
  /**
   * Whether the file has a chat template. Without one (a base model) send `prompt` text to
   * continue rather than `messages`: a chat would be rendered in ChatML, which the model never saw.
   */
  chat_template: boolean;
  n_vocab: number;
  context_length: number;
  /** Dimensions of `embeddings.create`'s vectors (the model's hidden size). */
  embedding_length: number;
  /**
   * How `embeddings.create` pools a text's final states (then L2-normalised): the file's
   * `pooling_type`, "mean" where it has none; "cls" takes the first token's, "last" the last's.
   */
  pooling: 'mean' | 'cls' | 'last';
  /**
   * An encoder (BERT, nomic-bert): it makes embeddings only; `chat.completions.create`
   * rejects with code `invalid_request`.
   */
  encoder: boolean;
  /**
   * A text-to-text encoder-decoder (T5): `chat.completions.create` takes a `prompt` (its
   * encoder's input; the reply is the decoder's output), not `messages`.
   */
  encoder_decoder: boolean;
  /** e.g. "gpu: <adapter> (BrowserWebGpu)" or "cpu". */
  backend: string;
  /** Set when "auto" fell back to the CPU: why. */
  notice: string | null;
  /** Threads of the CPU path (1: the single-threaded package; `threads_note` says why). */
  threads: number;
  /** Set when the CPU path runs on one thread although more were wanted: why. */
  threads_note?: string;
  /** Absolute URL the model came from (the cache key). */
  url: string;
  /** Bytes of every file of the model. */
  bytes: number;
  /** SHA-256 of the file; of each part for a split model. */
  sha256: string | string[];
  /** Files the model came in: 1, or the parts of a split model (`…-00001-of-00003.gguf`). */
  parts: number;
  from_cache: boolean;
  /** Whether the model is now in the offline cache. */
  cached: boolean;
  /** How many times a dropped download continued with a Range request (0 from the cache). */
  download_resumes?: number;
  load_ms: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string | Array<{ type: 'text'; text: string }>;
}

export interface ChatCompletionRequestBase {
  /** The conversation (rendered with the model's chat template), or… */
  messages?: ChatMessage[];
  /** …plain text to continue (base models; BOS is added where the model wants it). */
  prompt?: string;
  /** Default 0.7; 0 is greedy. */
  temperature?: number;
  /** Default 512; capped so that prompt + max_tokens fits the context. */
  max_tokens?: number;
  /**
   * Same seed, same settings, same prompt: the same reply, natively and in the browser.
   * With n > 1, choice i uses seed + i (absent: every choice draws its own random seed).
   */
  seed?: number;
  /**
   * How many completions to generate for the prompt (an integer from 1 to 16; default 1).
   * They run one after another (the prompt is evaluated once and its KV cache reused).
   */
  n?: number;
  stop?: string | string[];
  /** Nucleus sampling: keep the most likely tokens until their probability reaches top_p (1: off). */
  top_p?: number;
  /** Keep only the top_k most likely tokens (0: off). */
  top_k?: number;
  /** Drop tokens less likely than min_p times the most likely one (0: off). */
  min_p?: number;
  /** CTRL-style repetition penalty over the last repeat_last_n tokens (1: off; default window 64). */
  repeat_penalty?: number;
  repeat_last_n?: number;
  /** OpenAI semantics, over the same window (0: off; -2 to 2). */
  frequency_penalty?: number;
  presence_penalty?: number;
  /** Added to the logits of the given token ids (keys are token ids). */
  logit_bias?: Record<string, number>;
  /**
   * Structured output: every token is drawn from those that keep the reply valid JSON (an
   * object, or a value valid under the schema); a finished reply always parses.
   */
  response_format?: ResponseFormat;
  /** Aborts within one token (every choice): a stream throws an AbortError after the chunks that arrived; otherwise create() rejects with it. */
  signal?: AbortSignal;
  /**
   * Beam search with this many beams (2 to 16; 1: off), as the CLI's --beams: the best beam
   * arrives whole as one chunk. Not with n, stop, logit_bias or response_format.
   */
  n_beams?: number;
  /** Beam search ranks beams by log-probability / length^length_penalty (default 1). */
  length_penalty?: number;
  /** Accepted and ignored: the loaded model answers. Any field not listed here is a TypeError. */
  model?: string;
  user?: string;
  store?: boolean;
  metadata?: Record<string, string>;
}

/** create()'s second argument, as in OpenAI's client (other options are a TypeError). */
export interface RequestOptions {
  signal?: AbortSignal;
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name?: string; description?: string; schema: object; strict?: boolean } };

export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
  /** include_usage: a last chunk with no choices carries the usage (every other chunk has usage: null). */
  stream_options?: { include_usage?: boolean };
}

export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false | null;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface HearthTiming {
  /** Time to evaluate the prompt and sample the first token. */
  prefill_ms: number;
  /** Time spent in the following decode steps. */
  decode_ms: number;
  /** Number of decode steps in decode_ms. */
  decode_tokens: number;
  /** Time spent computing structured-output masks (0 without response_format). */
  grammar_ms: number;
}

/** Non-standard extras carried by every chunk. */
export interface HearthChunkExtras {
  /** Token ids sampled for this chunk (an end-of-turn token arrives in a chunk of its own, with empty text). */
  tokenIds: number[];
  /** On each choice's finish chunk: that choice's timing. */
  timing?: HearthTiming;
  /** wasm heap bytes after the reply (each choice's finish chunk). */
  memory?: number;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /**
   * One choice (none in the usage chunk of stream_options.include_usage). With n > 1 the
   * choices stream one after another: all of choice 0's chunks (the first with the role, the
   * last with its finish_reason), then choice 1's, …
   */
  choices: Array<{
    /** 0 to n - 1. */
    index: number;
    delta: { role?: 'assistant'; content: string };
    finish_reason: FinishReason | null;
  }>;
  /**
   * With stream_options.include_usage: null on every chunk but the last, which has no choices
   * and carries every choice's tokens, the prompt counted once. Absent otherwise.
   */
  usage?: CompletionUsage | null;
  hearth: HearthChunkExtras;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  /** n choices, index 0 to n - 1. */
  choices: Array<{
    index: number;
    message: { role: 'assistant'; content: string };
    finish_reason: FinishReason;
  }>;
  /** completion_tokens sums every choice; the prompt is counted once. */
  usage: CompletionUsage;
  hearth: {
    /** Token ids of choice 0 (with n = 1: the reply). */
    tokenIds: number[];
    /** Summed over the choices. */
    timing: HearthTiming;
    memory?: number;
    /** Per choice, in index order. */
    choices: Array<{ tokenIds: number[]; timing: HearthTiming }>;
  };
}

/** Async iterable of chunks; errors are thrown from the iterator. May also be awaited first. */
export interface ChatCompletionStream extends AsyncIterable<ChatCompletionChunk>, PromiseLike<AsyncIterable<ChatCompletionChunk> & { abort(): void }> {
  /** Stops the generation (every choice): iterating then throws an AbortError after the chunks that arrived. */
  abort(): void;
}

export interface Completions {
  create(request: ChatCompletionRequestStreaming, options?: RequestOptions): ChatCompletionStream;
  create(request: ChatCompletionRequestNonStreaming, options?: RequestOptions): Promise<ChatCompletion>;
}

export interface EmbeddingRequest {
  /**
   * A text, an array of token ids, or up to 2048 of either (ids are embedded as they are: an
   * encoder's [CLS] and [SEP] are not added to them).
   */
  input: string | string[] | number[] | (string | number[])[];
  /** "float" (default): number arrays; "base64": the little-endian float32 bytes, base64. */
  encoding_format?: 'float' | 'base64';
  /** Only the model's own size (`info.embedding_length`); they cannot be shortened. */
  dimensions?: number;
  /** Ignored: the loaded model answers. */
  model?: string;
  /** Ignored. */
  user?: string;
  signal?: AbortSignal;
}

export interface Embedding {
  object: 'embedding';
  index: number;
  /** Unit length (L2-normalised): a dot product is the cosine similarity. */
  embedding: number[] | string;
}

export interface EmbeddingResponse {
  object: 'list';
  data: Embedding[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface HearthEngine {
  readonly info: Readonly<ModelInfo>;
  /** Shorthand for info.backend. */
  readonly backend: string;
  /** wasm heap samples (bytes) from loading and after each reply; peak is the largest. */
  readonly memory: { samples: number[]; peak: number };
  readonly chat: { completions: Completions };
  /**
   * Sentence embeddings (OpenAI's shape): each input's final states (a decoder's final normed
   * hidden states), pooled as `info.pooling` says and L2-normalised, as llama.cpp pools them.
   * Clears the conversation cache.
   */
  readonly embeddings: { create(request: EmbeddingRequest, options?: RequestOptions): Promise<EmbeddingResponse> };
  /**
   * Perplexity of `text` (tokenized as is, no BOS). Texts longer than `window` tokens (default:
   * the context length) are scored in windows starting every `stride` tokens (default: `window`).
   * Clears the conversation cache.
   */
  perplexity(text: string, options?: { window?: number; stride?: number }): Promise<{ ppl: number; n_tokens: number; n_scored: number; mean_nll: number }>;
  /** Forgets the conversation cache. */
  resetChat(): Promise<void>;
  /** Frees the model and ends its worker. */
  unload(): Promise<void>;
  /** The module's listCachedModels. */
  listCachedModels: typeof listCachedModels;
  /** The module's deleteCachedModel. */
  deleteCachedModel: typeof deleteCachedModel;
}

/** The models in this origin's model cache, with their sizes in bytes (null where unknown). */
export function listCachedModels(): Promise<{ url: string; bytes: number | null }[]>;

/**
 * Removes a model from the cache; `url` may be any name `load` takes for it (resolved as
 * resolveModelUrl does). Resolves to whether it was cached.
 */
export function deleteCachedModel(url: string | URL, options?: { hubEndpoint?: string }): Promise<boolean>;

/**
 * Streams a GGUF model into a new engine. `url`: any URL (relative to the page), a Hugging Face
 * Hub file as `hf:owner/repo/file.gguf` or `hf:owner/repo@revision/path/file.gguf`, or a Hub
 * page URL (`https://huggingface.co/owner/repo/blob/main/file.gguf`); see resolveModelUrl.
 */
export function load(url: string | URL, options?: LoadOptions): Promise<HearthEngine>;

/**
 * The URL `load` fetches and caches for `url`: `hf:` and Hub page URLs become the Hub's download
 * URL (`…/owner/repo/resolve/revision/path`); others are resolved against the page. Throws a
 * TypeError for a malformed `hf:` URL.
 */
export function resolveModelUrl(url: string | URL, options?: { hubEndpoint?: string }): string;

export declare const Hearth: { load: typeof load; resolveModelUrl: typeof resolveModelUrl; listCachedModels: typeof listCachedModels; deleteCachedModel: typeof deleteCachedModel };
export default Hearth;

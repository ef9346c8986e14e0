// Split models: llama.cpp's gguf-split writes a model as name-00001-of-00003.gguf,
// name-00002-of-00003.gguf, … and a split model is named by its first part's URL.

/** Every part's URL of the split model whose first part is `url`; `[url]` for one file. */
export function partUrls(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return [url];
  }
  const m = /^(.*)-00001-of-(\d{5})\.gguf$/.exec(u.pathname);
  const count = m ? Number(m[2]) : 1;
  if (count < 2) return [url];
  return Array.from({ length: count }, (_, i) => {
    const part = new URL(u.href);
    part.pathname = `${m[1]}-${String(i + 1).padStart(5, '0')}-of-${m[2]}.gguf`;
    return part.href;
  });
}

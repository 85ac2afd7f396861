const { TokenizerLoader } = require("@lenml/tokenizers");
const fs = require("fs");
const [tokPath, inPath] = process.argv.slice(2);
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: JSON.parse(fs.readFileSync(tokPath, "utf8")), tokenizerConfig: {} });
const out = [];
for (const line of fs.readFileSync(inPath, "utf8").split("\n")) {
  if (!line) continue;
  const t = JSON.parse(line).text;
  out.push(JSON.stringify({ text: t, ids: tok.encode(t, { add_special_tokens: false }) }));
}
fs.writeFileSync(1, out.join("\n") + "\n");

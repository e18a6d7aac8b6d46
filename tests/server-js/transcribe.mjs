// Real-client check: the official OpenAI SDK transcribes a file through `modelpool serve`.
// usage: node transcribe.mjs BASE_URL AUDIO_FILE EXPECTED_TEXT   (exit 0 = the SDK got EXPECTED_TEXT)
import fs from "node:fs";
import OpenAI from "openai";

const [baseURL, file, expected] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused" });

const models = await client.models.list();
if (!models.data.length) throw new Error("no models listed");

const tr = await client.audio.transcriptions.create({ file: fs.createReadStream(file), model: models.data[0].id });
if (tr.text !== expected) {
  console.error(`SDK text ${JSON.stringify(tr.text)} != expected ${JSON.stringify(expected)}`);
  process.exit(1);
}
const v = await client.audio.transcriptions.create({
  file: fs.createReadStream(file), model: models.data[0].id, response_format: "verbose_json",
});
if (v.text !== expected || typeof v.duration !== "number" || !Array.isArray(v.words)) {
  console.error("verbose_json reply malformed:", JSON.stringify(v).slice(0, 300));
  process.exit(1);
}
// Subtitles come back from the SDK as plain strings: SubRip cues and a WebVTT document carrying the text.
for (const fmt of ["srt", "vtt"]) {
  const sub = await client.audio.transcriptions.create({
    file: fs.createReadStream(file), model: models.data[0].id, response_format: fmt,
  });
  const head = fmt === "srt" ? "1\n00:00:" : "WEBVTT\n\n00:00:";
  if (typeof sub !== "string" || !sub.startsWith(head) || !sub.includes(expected.split(" ")[0])) {
    console.error(`${fmt} reply malformed:`, JSON.stringify(sub).slice(0, 300));
    process.exit(1);
  }
}
// stream: true, as the SDK streams transcriptions: delta events that add up to the done event's text.
const events = await client.audio.transcriptions.create({
  file: fs.createReadStream(file), model: models.data[0].id, stream: true,
});
let joined = "", done = null;
for await (const ev of events) {
  if (ev.type === "transcript.text.delta") joined += ev.delta;
  else if (ev.type === "transcript.text.done") done = ev.text;
}
if (done !== expected || joined !== expected) {
  console.error(`stream: deltas ${JSON.stringify(joined)}, done ${JSON.stringify(done)}, want ${JSON.stringify(expected)}`);
  process.exit(1);
}
// A bad upload must surface as the SDK's API error with the HTTP status we chose (415).
try {
  await client.audio.transcriptions.create({ file: new File([Buffer.from("not audio at all")], "x.wav"), model: "x" });
  console.error("bad audio was accepted");
  process.exit(1);
} catch (e) {
  if (e.status !== 415) {
    console.error("bad audio: expected HTTP 415, got", e.status, e.message);
    process.exit(1);
  }
}
console.log(`openai sdk ok: ${JSON.stringify(tr.text)}, ${v.words.length} words, ${v.duration} s`);

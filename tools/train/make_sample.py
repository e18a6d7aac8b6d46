#!/usr/bin/python3
"""Make samples/phone-gsm.wav: a phone number read by a HELD-OUT voice (flite rms, never in
training), band-limited to 300-3400 Hz, GSM 06.10 round trip, stored as 8 kHz 16-bit PCM WAV
(what a modem's AT+CREC WAV or an Asterisk recording after GSM transcoding looks like), plus
samples/phone-gsm.txt with the expected transcript.

  /usr/bin/python3 tools/train/make_sample.py [OUT_DIR]   (default: samples/)
"""
import os
import subprocess
import sys
import tempfile

TEXT = "four one five, five five five, zero one nine eight"
# Upper case: what `modelpool transcribe` prints (HF tokenizer output of the base-960h vocabulary).
EXPECTED = "FOUR ONE FIVE FIVE FIVE FIVE ZERO ONE NINE EIGHT"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "..", "..", "samples")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tts = os.path.join(tmp, "tts.wav")
        gsm = os.path.join(tmp, "line.gsm")
        subprocess.run(["flite", "-voice", "rms", "-t", TEXT, "-o", tts], check=True)
        # 0.4 s of line silence each side, -20 dB gain margin, telephone band, 8 kHz, GSM 06.10.
        subprocess.run(["sox", "-V1", "-D", tts, "-r", "8000", "-c", "1", gsm, "remix", "1", "sinc", "300-3400",
                        "rate", "-h", "8000", "norm", "-6", "pad", "0.4", "0.4"], check=True)
        subprocess.run(["sox", "-V1", "-D", gsm, "-e", "signed-integer", "-b", "16",
                        os.path.join(out, "phone-gsm.wav")], check=True)
    with open(os.path.join(out, "phone-gsm.txt"), "w") as f:
        f.write(EXPECTED + "\n")
    print("wrote %s/phone-gsm.wav and phone-gsm.txt" % out)


if __name__ == "__main__":
    main()

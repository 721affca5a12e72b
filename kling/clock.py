"""The media clock: the one owner of frame rate, audio sample rate and the MFCC rate.

These are fixed, not settings. Curation normalises every clip to 25 fps video and 16 kHz mono audio, so frame
i always means time i / 25 s and sample j time j / 16000 s, and every later step (shots, face tracks, speech,
quality, lip sync) and every metric protocol (Sync-C/D, CSIM, FID/FVD, drift) reads frames on that timeline.
Sync-C/D follow SyncNet's protocol (joonson/syncnet_python): 25 fps, 16 kHz audio, MFCC at 100 Hz, so one
video frame is 640 samples and 4 MFCC columns; a 5-frame lip window meets a 20-column audio window. Another
rate would not be a different setting of the same metrics, it would be different metrics.

Bottom layer: imports nothing from the project.
"""

FPS = 25  # frames per second of every normalised clip and of every metric protocol's timeline
SAMPLE_RATE = 16000  # Hz, mono: normalised audio, voice activity (silero) and SyncNet's MFCC
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640 audio samples per video frame
MFCC_PER_FRAME = 4  # SyncNet's MFCC runs at 100 Hz (10 ms hop): 4 columns per 40 ms video frame

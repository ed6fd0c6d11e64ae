// Anchors the shared precompiled header target; intentionally empty.

"""Column names shared by every step: one spelling, everywhere."""

USER_ID = "user_id"  # the dataset's own user ID, always kept as a string
ITEM_ID = "song_id"  # the dataset's own item ID (a song, artist or movie), as a string
RATING = "rating"  # explicit rating, or play count in implicit mode
TIMESTAMP = "timestamp"  # seconds since the epoch; null when the dataset has none
TITLE = "title"
ARTIST = "artist"

# ALS needs dense integer IDs; preprocess assigns them and keeps the originals beside them.
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"

PREDICTION = "prediction"
REJECT_REASON = "reason"
RAW_LINE = "raw"

# The published CSV, in order. `artist` is empty where the dataset names none (MovieLens).
RECOMMENDATION_COLUMNS = (USER_ID, "rank", ITEM_ID, TITLE, ARTIST, "predicted_rating")

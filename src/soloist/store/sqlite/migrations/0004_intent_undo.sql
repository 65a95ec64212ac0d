-- How to undo a dispatched intent, derived from its tool's declared compensation.
ALTER TABLE intents ADD COLUMN undo TEXT;

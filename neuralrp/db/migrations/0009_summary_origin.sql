-- Where a summary's text came from (issue 17): 'llm', written by the model (and every summary made before this
-- column), or 'extract', picked from the scene's own messages without the model, stored when the model's summary
-- was rejected or failed while the scene's messages were already leaving the prompt.
ALTER TABLE summaries ADD COLUMN origin TEXT NOT NULL DEFAULT 'llm' CHECK (origin IN ('llm', 'extract'));

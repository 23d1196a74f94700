-- The context of each user's latest evaluation (JSON; NULL: none recorded), for GetUser. The
-- `users` exporter gets it in the events meant for it alone (docs/admin.md, "Users and what they
-- got"); `context=false` on the exporter keeps it out.
ALTER TABLE users ADD COLUMN context TEXT;

-- Itemized awaits (TPF_WIRE §5.2): an await unit may have one interaction per item. The unit
-- resumes its execution once every item is answered, so it keeps which interactions are its
-- items (in item order) and the keys of the items answered so far (TPF `completedItemKeys`).
-- A unit re-created for the same execution and step overwrites both, so interactions of an
-- earlier await on the same unit never count for the new one.
ALTER TABLE await_units ADD COLUMN item_interaction_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE await_units ADD COLUMN completed_item_keys text[] NOT NULL DEFAULT '{}';

-- Units created before this migration: their interactions, in item order, are their items.
UPDATE await_units u SET item_interaction_ids = items.ids
FROM (
    SELECT tenant_id, unit_id,
           array_agg(interaction_id ORDER BY item_index NULLS FIRST, created_at_ms) AS ids
    FROM interactions
    GROUP BY tenant_id, unit_id
) items
WHERE items.tenant_id = u.tenant_id AND items.unit_id = u.unit_id;

-- Interaction expiry (TPF_WIRE §5.3): a record lives until its deadline + the record TTL, then
-- the sweeper marks it EXPIRED. Pending interactions are timed out at their deadline first, so
-- the expiry scan only walks ended ones, oldest deadline first; this index holds exactly those.
CREATE INDEX interactions_expirable
    ON interactions (deadline_ms)
    WHERE status IN ('COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED');

WITH "vo" AS (
  SELECT
    *
  FROM "orders"
  WHERE
    "created_at" <= '2026-06-30 23:59:59.999999' OR "created_at" IS NULL
), "ve" AS (
  SELECT
    *
  FROM "events"
  WHERE
    "at" <= '2026-06-30 23:59:59.999999' OR "at" IS NULL
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT "c"."id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    COALESCE(
      (
        COALESCE((
          COALESCE("c"."age" >= 18, 0)
        ), 0)
        OR COALESCE((
          COALESCE("c"."email_subscribed", 0)
        ), 0)
      ),
      0
    )
    AND NOT COALESCE((
      COALESCE("c"."vip", 0)
    ), 0)
  )

WITH "vo" AS (
  SELECT
    *
  FROM "orders"
  WHERE
    "created_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
    OR "created_at" IS NULL
), "ve" AS (
  SELECT
    *
  FROM "events"
  WHERE
    "at" <= toDateTime64('2026-06-30 23:59:59.999999', 6) OR "at" IS NULL
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT (
    "c"."id" IS NULL
  )
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
  )
  AND (
    COALESCE(
      (
        COALESCE((
          COALESCE("c"."age" >= 18, FALSE)
        ), FALSE)
        OR COALESCE((
          COALESCE("c"."email_subscribed", FALSE)
        ), FALSE)
      ),
      FALSE
    )
    AND NOT COALESCE((
      COALESCE("c"."vip", FALSE)
    ), FALSE)
  )

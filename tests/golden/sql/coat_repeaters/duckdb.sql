WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL
    OR "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    COUNT(
      CASE
        WHEN (
          "o"."created_at" > CAST('2025-06-30 23:59:59.999999' AS TIMESTAMP)
          AND "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
        )
        THEN 1
      END
    ) AS "a0",
    SUM("o"."total") AS "a1",
    COUNT("o"."total") AS "a2"
  FROM "vo" AS "o"
  WHERE
    "o"."id" IN (
      SELECT
        "i"."order_id"
      FROM "order_items" AS "i"
      WHERE
        "i"."category" = 'coat'
    )
  GROUP BY
    "o"."customer_id"
)
SELECT
  "o_agg"."customer_id" AS "customer_id"
FROM "o_agg"
WHERE
  NOT "o_agg"."customer_id" IS NULL
  AND NOT "o_agg"."customer_id" IN (
    SELECT
      "c"."id"
    FROM "customers" AS "c"
    WHERE
      NOT (
        "c"."registered_at" IS NULL
        OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
      )
      AND NOT "c"."id" IS NULL
  )
  AND (
    COALESCE("o_agg"."a0", 0) >= 2
    AND CASE
      WHEN NOT TRY_CAST(COALESCE("o_agg"."a1", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(12, 6)) IS NULL
      AND NOT TRY_CAST(COALESCE("o_agg"."a2", 0) AS DECIMAL(12, 6)) IS NULL
      THEN CASE
        WHEN CAST(COALESCE("o_agg"."a2", 0) AS BIGINT) = 0
        THEN NULL
        ELSE CAST((
          2 * CAST(CAST(COALESCE("o_agg"."a1", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(12, 6)) * 1000000 AS BIGINT) + SIGN(
            CAST(CAST(COALESCE("o_agg"."a1", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(12, 6)) * 1000000 AS BIGINT)
          ) * ABS(CAST(COALESCE("o_agg"."a2", 0) AS BIGINT))
        ) // (
          2 * CAST(COALESCE("o_agg"."a2", 0) AS BIGINT)
        ) AS DECIMAL(12, 0)) * CAST(0.000001 AS DECIMAL(6, 6))
      END
      ELSE CASE
        WHEN CAST(COALESCE("o_agg"."a2", 0) AS INT128) = 0
        THEN NULL
        ELSE CAST((
          2 * CAST(CAST(COALESCE("o_agg"."a1", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(38, 6)) * 1000000 AS INT128) + SIGN(
            CAST(CAST(COALESCE("o_agg"."a1", CAST(0 AS DECIMAL(38, 6))) AS DECIMAL(38, 6)) * 1000000 AS INT128)
          ) * ABS(CAST(COALESCE("o_agg"."a2", 0) AS INT128))
        ) // (
          2 * CAST(COALESCE("o_agg"."a2", 0) AS INT128)
        ) AS DECIMAL(38, 0)) * CAST(0.000001 AS DECIMAL(38, 6))
      END
    END > 150
  )

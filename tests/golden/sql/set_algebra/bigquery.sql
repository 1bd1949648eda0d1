WITH `vo` AS (
  SELECT
    *
  FROM `orders`
  WHERE
    `created_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
    OR `created_at` IS NULL
), `ve` AS (
  SELECT
    *
  FROM `events`
  WHERE
    `at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME) OR `at` IS NULL
)
SELECT
  `c`.`id` AS `customer_id`
FROM `customers` AS `c`
WHERE
  NOT `c`.`id` IS NULL
  AND (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
  )
  AND (
    COALESCE(
      (
        COALESCE((
          COALESCE(`c`.`age` >= 18, FALSE)
        ), FALSE)
        OR COALESCE((
          COALESCE(`c`.`email_subscribed`, FALSE)
        ), FALSE)
      ),
      FALSE
    )
    AND NOT COALESCE((
      COALESCE(`c`.`vip`, FALSE)
    ), FALSE)
  )

from jobs.celery import shared_task  # was: from celery import shared_task


@shared_task
def welcome():
    print('Welcome to my site')

    return True
